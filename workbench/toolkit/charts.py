"""Toolkit charts that survive a plain ``jupyter nbconvert --to html``.

A kernel's plotly renderer (``plotly_mimetype``) leaves only the figure's JSON in the notebook:
JupyterLab draws it, nbconvert cannot and drops the chart. A :class:`Chart` shows itself with a
PNG of the same figure beside that JSON, drawn by kaleido in the machine's Chromium (kaleido finds
Debian's ``/usr/bin/chromium``; one browser per kernel, started at the first chart and closed when
the kernel exits): JupyterLab still shows the interactive figure, nbconvert the image. Where no
image can be drawn (no Chromium), the chart shows as before, with one warning saying why.
"""

from __future__ import annotations

import base64
import os
import warnings

import plotly.graph_objects as go

from workbench.display import CHART_IMAGES_ENV

PLOTLY_MIME = "application/vnd.plotly.v1+json"
IMAGE_WIDTH_PX = 900  # the width of the image; its height is the figure's own (default 450)

_kaleido_state: dict[str, object] = {}  # "server": True once started; "failed": the first error


class Chart(go.Figure):
    """A plotly figure that shows itself with a static PNG fallback for nbconvert."""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if PLOTLY_MIME not in bundle or "text/html" in bundle:  # another renderer: its own way
            super()._ipython_display_()
            return
        image = static_png(self)
        if image is not None:
            bundle["image/png"] = base64.b64encode(image).decode("ascii")
        display(bundle, raw=True)


def static_png(figure: go.Figure) -> bytes | None:
    """``figure`` as PNG bytes, :data:`IMAGE_WIDTH_PX` wide; None when ``$WORKBENCH_CHART_IMAGES``
    is ``0`` or kaleido cannot draw (warned once per process)."""
    if os.environ.get(CHART_IMAGES_ENV) == "0" or "failed" in _kaleido_state:
        return None
    try:
        import kaleido

        if "server" not in _kaleido_state:
            import atexit

            kaleido.start_sync_server(silence_warnings=True)  # one browser for every chart
            atexit.register(kaleido.stop_sync_server, silence_warnings=True)
            _kaleido_state["server"] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "the kopts argument is ignored if using a server"
            return figure.to_image(format="png", width=IMAGE_WIDTH_PX, height=figure.layout.height or 450)
    except Exception as exc:  # no kaleido, no Chromium, a browser that died: the chart stays interactive
        _kaleido_state["failed"] = exc
        warnings.warn(
            f"Charts carry no static image ({type(exc).__name__}: {exc}), so a plain nbconvert export drops them: install Chromium for kaleido.",
            stacklevel=2,
        )
        return None

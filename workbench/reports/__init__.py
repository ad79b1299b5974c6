"""Reports a stakeholder reads: an experiment's report data and its cache (``data``), its tables and
charts (``tables``, ``charts``), papermill runs of the notebooks (``notebooks``, ``runs``), the data
overview (``overview``) and the Voila dashboard (``dashboard``, ``voila_server``).
"""

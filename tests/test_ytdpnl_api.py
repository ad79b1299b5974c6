"""The study's HTTP API client against a small local server that answers from the test database
(built here from the raw tables with pandas, as the study server would): same frames as the SQL
path, the participants report cached, failures turned into clear errors, the token never shown."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pandas as pd
import pytest

import workbench as wb
from workbench.errors import WorkbenchError
from workbench.redaction import redact
from workbench.studies import ytdpnl
from workbench.studies.ytdpnl.api_client import ApiError

SCHEMA = "ytdpnl"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-token-for-the-local-server"
PAGE_SIZE = 7


def iso(value) -> str | None:
    """JavaScript's Date.toJSON(): ISO-8601 UTC with milliseconds and a Z."""
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class StudyServer:
    """Answers the study API's analysis endpoints from raw tables; ``mode`` plants failures."""

    def __init__(self, raw: dict[str, pd.DataFrame]):
        self.raw, self.mode, self.hits = raw, "ok", {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                server.hits[self.path.split("/")[2]] = server.hits.get(self.path.split("/")[2], 0) + 1
                if self.headers.get("authorization") != TOKEN:
                    return self.answer(401, {"kind": "Failure", "message": "invalid token"})
                if server.mode == "500":
                    return self.answer(500, {"kind": "Failure", "message": "database is down"})
                if server.mode == "malformed":
                    return self.answer(200, "<html>gateway</html>", raw=True)
                if server.mode == "no-envelope":
                    return self.answer(200, {"results": []})
                if server.mode == "slow":
                    time.sleep(1.5)
                try:
                    value = server.route(self.path)
                except KeyError:
                    return self.answer(404, {"kind": "Failure", "message": "not found"})
                self.answer(200, {"kind": "Success", "value": value})

            def answer(self, status, body, raw=False):
                data = (body if raw else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def route(self, path: str):
        parts = [unquote(p) for p in path.strip("/").split("/")]
        r = self.raw
        if parts[:2] == ["api", "participants"]:
            page = int(parts[2])
            people = r["participant"].sort_values("id")
            chunk = people.iloc[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
            results = [
                {
                    "id": int(p.id),
                    "code": p.code,
                    "arm": p.arm,
                    "phase": int(p.phase),
                    "isPaid": bool(p.is_paid),
                    "extensionActivatedAt": iso(p.extension_activated_at),
                    "createdAt": iso(p.created_at),
                }
                for p in chunk.itertuples()
            ]
            return {"results": results, "page": page, "pageSize": PAGE_SIZE, "pageCount": -(-len(people) // PAGE_SIZE)}
        if parts[:2] == ["api", "participant"]:
            sessions = r["session"][r["session"]["participant_code"] == parts[2]]
            if sessions.empty and parts[2] not in set(r["participant"]["code"]):
                raise KeyError(parts[2])
            out = []
            for s in sessions.itertuples():
                events = r["event"][r["event"]["session_uuid"] == s.uuid]
                out.append(
                    {
                        "id": int(s.id),
                        "uuid": s.uuid,
                        "participantCode": s.participant_code,
                        "createdAt": iso(s.created_at),
                        "startedAt": iso(events["created_at"].min()) if len(events) else None,
                        "endedAt": iso(events["created_at"].max()) if len(events) else None,
                        "eventCount": len(events),
                    }
                )
            return {
                "code": parts[2],
                "sessionCount": len(out),
                "firstSessionDate": iso(sessions["created_at"].min()),
                "latestSessionDate": iso(sessions["created_at"].max()),
                "sessions": out,
            }
        if parts[:2] == ["api", "event-overviews"]:
            events = r["event"][r["event"]["session_uuid"] == parts[2]].sort_values(
                ["created_at", "id"], ascending=False
            )
            seconds = r["watch_time"].set_index("event_id")["seconds_watched"]
            items = (
                r["video_list_item"]
                .merge(r["video"].rename(columns={"id": "video_id"}), on="video_id")
                .sort_values("position")
            )
            out = []
            for e in events.itertuples():
                row = {
                    "id": int(e.id),
                    "type": e.type,
                    "url": e.url,
                    "context": e.context,
                    "arm": e.arm,
                    "phase": int(e.phase),
                    "createdAt": iso(e.created_at),
                }
                if e.type == "WATCH_TIME" and e.id in seconds.index:
                    row["secondsWatched"] = float(seconds[e.id])
                if e.type == "RECOMMENDATIONS_SHOWN":
                    for list_type, key in (
                        ("NON_PERSONALIZED", "nonPersonalized"),
                        ("PERSONALIZED", "personalized"),
                        ("SHOWN", "shown"),
                    ):
                        mine = items[(items["event_id"] == e.id) & (items["list_type"] == list_type)]
                        row[key] = [
                            {"youtubeId": v.youtube_id, "url": v.url, "title": v.title, "videoType": v.video_type}
                            for v in mine.itertuples()
                        ]
                out.append(row)
            return out
        if parts[:2] == ["api", "participants-report"]:
            te = r["transition_event"].sort_values("id")
            rows = []
            for p in r["participant"].sort_values("id").itertuples():
                mine = te[te["participant_id"] == p.id]
                latest = {phase: mine[mine["to_phase"] == phase]["created_at"].max() for phase in (0, 1, 2)}

                def ms(v):
                    if pd.isna(v):
                        return None
                    return int((pd.Timestamp(v) - pd.Timestamp("1970-01-01")) / pd.Timedelta(milliseconds=1))

                rows.append(
                    {
                        "identifier": p.code,
                        "phase": int(p.phase),
                        "activated_browser_extension_at": ms(p.extension_activated_at),
                        "entered_intervention_at": ms(latest[1]),
                        "entered_post_intervention_at": ms(latest[2]),
                        "was_reset_to_pre_intervention_at": ms(latest[0]),
                    }
                )
            return rows
        raise KeyError(path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def served(backend):
    url = backend.new_url("ytdpnl_api")
    writer = wb.connect(url, read_only=False)
    ytdpnl.generate_study(writer, "tiny", seed=11, schema=SCHEMA, reset_share=0.3)
    writer.dispose()
    db = wb.connect(url)
    raw = {}
    for table in ("participant", "session", "event", "watch_time", "video", "video_list_item", "transition_event"):
        frame = db.sql(f"SELECT * FROM {SCHEMA}.{table}")
        for column in ("arm", "type", "list_type", "video_type", "reason", "session_uuid", "uuid"):
            if column in frame:
                frame[column] = frame[column].map(lambda v: None if v is None else str(v))
        raw[table] = frame
    server = StudyServer(raw)
    yield db, server, raw
    server.close()
    db.dispose()


def client(server: StudyServer, **kwargs) -> ytdpnl.ApiClient:
    return ytdpnl.ApiClient(server.url, TOKEN, **kwargs)


def test_api_frames_equal_the_sql_frames(served):
    db, server, raw = served
    api = client(server)
    pd.testing.assert_frame_equal(api.participants(), ytdpnl.participants(db, schema=SCHEMA))
    assert server.hits["participants"] >= 2  # several pages were fetched
    code = raw["participant"]["code"].iloc[2]
    from_api, from_sql = api.participant_summary(code), ytdpnl.participant_summary(db, code, schema=SCHEMA)
    pd.testing.assert_frame_equal(from_api, from_sql)
    assert (
        from_api.attrs["n_sessions"] == from_sql.attrs["n_sessions"]
        and from_api.attrs["first_session"] == from_sql.attrs["first_session"]
    )
    shown = raw["event"][raw["event"]["type"] == "RECOMMENDATIONS_SHOWN"]["session_uuid"].iloc[0]
    pd.testing.assert_frame_equal(api.session_events(shown), ytdpnl.session_events(db, shown, schema=SCHEMA))
    report = api.participants_report(force=True)
    pd.testing.assert_frame_equal(report, ytdpnl.participants_report(db, schema=SCHEMA))
    assert report["was_reset_to_pre_intervention_at"].notna().any()


def test_participants_report_is_fetched_at_most_once_an_hour(served):
    _, server, _ = served
    api = client(server)
    before = server.hits.get("participants-report", 0)
    first = api.participants_report(force=True)
    second = client(server).participants_report()  # a new client of the same server and token reuses it
    assert server.hits["participants-report"] == before + 1
    pd.testing.assert_frame_equal(first, second)
    api.participants_report(force=True)
    assert server.hits["participants-report"] == before + 2
    short = client(server, report_cache_s=0.0)
    short.participants_report()
    assert server.hits["participants-report"] == before + 3


@pytest.mark.parametrize(
    "mode, message",
    [
        ("500", "failed GET /api/participant/x with status 500: database is down"),
        ("malformed", "body that is not JSON"),
        ("no-envelope", 'without a {"kind": "Success"|"Failure"} envelope'),
        ("slow", "did not answer GET /api/participant/x within 0.3 s"),
    ],
)
def test_failures_give_clear_errors(served, mode, message):
    _, server, _ = served
    server.mode = mode
    try:
        with pytest.raises(ApiError) as caught:
            client(server, timeout_s=0.3).participant_summary("x")
    finally:
        server.mode = "ok"
    assert message in str(caught.value) and TOKEN not in str(caught.value)


def test_a_wrong_token_is_rejected_and_the_token_never_shows(served):
    _, server, _ = served
    with pytest.raises(ApiError, match=r"rejected the token.*status 401"):
        ytdpnl.ApiClient(server.url, "not-the-token").participants()
    api = client(server)
    assert TOKEN not in repr(api) and TOKEN not in str(api) and TOKEN not in str(vars(api))
    assert redact(f"header {TOKEN}") == "header ***"
    with pytest.raises(WorkbenchError, match="not an http"):
        ytdpnl.ApiClient("ftp://example.org", TOKEN)
    with pytest.raises(ApiError, match="Cannot reach the study API"):
        ytdpnl.ApiClient("http://127.0.0.1:9", TOKEN, timeout_s=2).participants()


@pytest.mark.notebook
def test_report_notebook_reads_the_api(served, tmp_path, monkeypatch):
    from workbench.reports.notebooks import run_notebook

    db, server, raw = served
    if db.dialect.name != "duckdb":
        pytest.skip("the API path of the notebook does not depend on the engine behind the server: run once")
    monkeypatch.setenv("YTDPNL_API_URL", server.url)
    monkeypatch.setenv("YTDPNL_API_TOKEN", TOKEN)
    codes = list(raw["participant"]["code"][:3])
    run = run_notebook("ytdpnl_study_report.ipynb", tmp_path, parameters={"source": "api", "codes": codes})
    nb = run.notebook.read_text()
    assert '"output_type": "error"' not in nb and TOKEN not in nb and TOKEN not in run.html.read_text()
    assert all(code in nb for code in codes) and raw["participant"]["code"].iloc[5] not in nb.split("Overview")[0]
    assert "Daily activity needs the database" in nb

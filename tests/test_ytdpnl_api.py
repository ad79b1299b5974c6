"""The study's HTTP API client against a local server answering as the production server's source
does (tests/support/ytdpnl_server.py, built from the generator's study): same frames as the SQL
path, every endpoint of seed 002, both failure envelopes, the 401, the HTML 404, inputs checked
before sending, the participants report cached, and the token in no error."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

import workbench as wb
from tests.support.ytdpnl_server import ProductionStudyServer
from workbench.errors import WorkbenchError
from workbench.redaction import redact
from workbench.studies import ytdpnl
from workbench.studies.ytdpnl.api_client import ApiError

SCHEMA = "ytdpnl"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-token-for-the-local-server"


@pytest.fixture(scope="module")
def raw(backend):
    url = backend.new_url("ytdpnl_api")
    writer = wb.connect(url, read_only=False)
    ytdpnl.generate_study(writer, "tiny", seed=11, schema=SCHEMA, reset_share=0.3)
    with writer.transaction() as conn:  # a transition edited later: the report must time it by updated_at
        conn.exec_driver_sql(
            f"UPDATE {SCHEMA}.transition_event SET updated_at = created_at + INTERVAL '90 seconds' WHERE mod(id, 2) = 0"
        )
        conn.exec_driver_sql(  # participants moved in their channel source and edited: every column differs somewhere
            f"UPDATE {SCHEMA}.participant SET pos_in_channel_source = mod(id, 3), "
            "pos_in_channel_source_last_updated_at = created_at + INTERVAL '7 hours', "
            "updated_at = created_at + INTERVAL '2 days', extension_installed = mod(id, 3) = 0 WHERE mod(id, 2) = 1"
        )
    writer.dispose()
    db = wb.connect(url)
    tables = {}
    for table in ("participant", "session", "event", "watch_time", "video", "video_list_item", "transition_event"):
        frame = db.sql(f"SELECT * FROM {SCHEMA}.{table} ORDER BY 1")  # id order, also after the UPDATEs above
        for column in ("arm", "type", "list_type", "video_type", "reason", "session_uuid", "uuid"):
            if column in frame:
                frame[column] = frame[column].map(lambda v: None if v is None else str(v))
        tables[table] = frame
    yield db, tables
    db.dispose()


@pytest.fixture(scope="module")
def served(raw):
    db, tables = raw
    server = ProductionStudyServer(tables, TOKEN)
    yield db, server, tables
    server.close()


@pytest.fixture
def fresh(raw):
    """A server of its own, for tests that write."""
    server = ProductionStudyServer(raw[1], TOKEN)
    yield server
    server.close()


def client(server: ProductionStudyServer, **kwargs) -> ytdpnl.ApiClient:
    return ytdpnl.ApiClient(server.url, TOKEN, **kwargs)


def test_api_frames_equal_the_sql_frames(served):
    db, server, raw = served
    api = client(server)
    people = api.participants()
    pd.testing.assert_frame_equal(people, ytdpnl.participants(db, schema=SCHEMA))
    sent = next(iter(server.participants.values()))  # every field the server sends is a column
    fields = sorted(re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower() for k in sent)
    assert sorted(people.columns) == fields == sorted(raw["participant"].columns)
    assert people["pos_in_channel_source"].nunique() == 3 and people["extension_installed"].nunique() == 2
    assert people["channel_source_id"].isna().any() and (people["updated_at"] > people["created_at"]).any()
    assert server.hits["participants"] >= 2  # several pages of 15 were fetched
    code = raw["participant"]["code"].iloc[2]
    from_api, from_sql = api.participant_summary(code), ytdpnl.participant_summary(db, code, schema=SCHEMA)
    pd.testing.assert_frame_equal(from_api, from_sql)
    assert {k: from_api.attrs[k] for k in ("n_sessions", "first_session", "latest_session")} == {
        k: from_sql.attrs[k] for k in ("n_sessions", "first_session", "latest_session")
    }
    events = raw["event"]
    for event_type in ("RECOMMENDATIONS_SHOWN", "WATCH_TIME"):
        uuid = events[events["type"] == event_type]["session_uuid"].iloc[0]
        from_api = api.session_events(uuid)
        pd.testing.assert_frame_equal(from_api, ytdpnl.session_events(db, uuid, schema=SCHEMA))
    shown = from_api  # a WATCH_TIME session: seconds read from data.watchtime, not NaN
    assert shown.loc[shown["type"] == "WATCH_TIME", "seconds_watched"].notna().all()
    uuid = events[events["type"] == "RECOMMENDATIONS_SHOWN"]["session_uuid"].iloc[0]
    lists = api.session_events(uuid).query("type == 'RECOMMENDATIONS_SHOWN'")
    assert lists["shown"].map(len).sum() > 0 and lists["non_personalized"].map(len).sum() > 0
    report = api.participants_report(force=True)
    pd.testing.assert_frame_equal(report, ytdpnl.participants_report(db, schema=SCHEMA))
    assert report["was_reset_to_pre_intervention_at"].notna().any()
    te = raw["transition_event"]  # both paths time transitions by updated_at, as production does
    edited = te[te["updated_at"] != te["created_at"]].sort_values("id").groupby(["participant_id", "to_phase"]).last()
    latest = te.sort_values("id").groupby(["participant_id", "to_phase"]).last()
    assert (latest["id"].reindex(edited.index) == edited["id"]).any()


def test_production_shapes_are_read_not_assumed(served):
    _, server, raw = served
    code = raw["participant"]["code"].iloc[2]
    status, answer = server.get_participant_overview(None, {}, code)
    sessions = answer["value"]["sessions"]
    assert status == 200 and len(sessions) >= 2 and all(isinstance(s["eventCount"], str) for s in sessions)
    assert answer["value"]["firstSessionDate"] > answer["value"]["latestSessionDate"]  # production's swap
    summary = client(server).participant_summary(code)
    assert summary.attrs["first_session"] < summary.attrs["latest_session"]
    assert summary.attrs["participant"]["code"] == code and "isPaid" in summary.attrs["participant"]
    page = server.get_participants(None, {}, "0")[1]["value"]
    assert page["pageSize"] == 15 and page["count"] == len(raw["participant"])
    assert [p["createdAt"] for p in page["results"]] == sorted((p["createdAt"] for p in page["results"]), reverse=True)


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


def test_each_failure_envelope_gives_the_servers_own_message(fresh):
    api = client(fresh, timeout_s=0.5)
    cases = []
    with pytest.raises(ApiError) as caught:  # older route: 404 {"kind": "Error"}
        api.participant_summary("no-such-code")
    cases.append((caught, "failed GET /api/participant/no-such-code with status 404: Participant not found."))
    with pytest.raises(ApiError) as caught:  # api-2 route: 500 {"kind": "Failure"}
        api.create_participant(fresh.participants and next(iter(fresh.participants)))
    cases.append((caught, "with status 500: Participant with that code already exists, use the update endpoint"))
    fresh.database_down = True
    with pytest.raises(ApiError) as caught:  # older route: 500 {"kind": "Error"}
        api.participants()
    cases.append((caught, "failed GET /api/participants/0 with status 500: Error getting participants."))
    with pytest.raises(ApiError) as caught:
        api.participants_report(force=True)
    cases.append((caught, "failed GET /api/participants-report with status 500: connect ECONNREFUSED"))
    fresh.database_down = False
    with pytest.raises(ApiError) as caught:  # Express's HTML 404 for a route the server does not have
        ytdpnl.ApiClient(fresh.url + "/old", TOKEN).channel_rotation_speed()
    cases.append((caught, "The study server has no route GET /api/channel-rotation-speed (HTML 404 page)"))
    for gateway, message in (("html", "status 502 and a body that is not JSON"), ("slow", "within 0.5 s")):
        fresh.gateway = gateway
        with pytest.raises(ApiError) as caught:
            api.participant_summary("x")
        cases.append((caught, message))
    fresh.gateway = None
    for caught, message in cases:
        text = str(caught.value)
        assert message in text and TOKEN not in text and TOKEN not in repr(caught.value), text


def test_a_wrong_token_is_rejected_and_the_token_never_shows(served):
    _, server, _ = served
    with pytest.raises(ApiError) as caught:
        ytdpnl.ApiClient(server.url, "not-the-token").participants()
    assert str(caught.value) == (
        "The study API rejected the token for GET /api/participants/0 (status 401: Invalid token (NOT_AUTHENTICATED)): "
        "generate a new API token in the admin panel."
    )
    with pytest.raises(ApiError, match=r"rejected the token for POST /api/voucher \(status 401"):
        ytdpnl.ApiClient(server.url, "not-the-token").add_vouchers(["v"])
    api = client(server)
    assert TOKEN not in repr(api) and TOKEN not in str(api) and TOKEN not in str(vars(api))
    assert redact(f"header {TOKEN}") == "header ***"
    with pytest.raises(WorkbenchError, match="not an http"):
        ytdpnl.ApiClient("ftp://example.org", TOKEN)
    with pytest.raises(ApiError, match="Cannot reach the study API"):
        ytdpnl.ApiClient("http://127.0.0.1:9", TOKEN, timeout_s=2).participants()


def test_participants_are_created_and_updated_keeping_their_paid_state(fresh):
    api = client(fresh)
    made = api.create_participant("new-paid", arm="treatment", is_paid=True)
    assert (made["arm"], made["isPaid"], made["phase"]) == ("treatment", True, 0)
    assert fresh.requests[-1][2] == {"code": "new-paid", "arm": "treatment", "isPaid": 1}
    assert api.create_participant("new-0", arm=0)["arm"] == "control"
    assert api.create_participant("new-1", arm=1)["arm"] == "treatment"
    assert fresh.requests[-1][2] == {"code": "new-1", "arm": "treatment"}  # isPaid only ever as the number 1
    updated = api.update_participant("new-paid", phase=1)
    assert (updated["phase"], updated["isPaid"]) == (1, True)  # read first: production would have reset it
    assert fresh.requests[-1] == ("PUT", "/api/participant/new-paid", {"phase": 1, "isPaid": 1})
    updated = api.update_participant(
        "new-paid", is_paid=False, arm="control", channel_source_id=3, pos_in_channel_source=2
    )
    assert (updated["isPaid"], updated["arm"], updated["channelSourceId"], updated["posInChannelSource"]) == (
        False,
        "control",
        3,
        2,
    )
    assert api.update_participant("new-paid", phase=2)["isPaid"] is False
    report = api.participants_report(force=True).set_index("identifier")
    assert report.loc["new-paid", "phase"] == 2 and not pd.isna(report.loc["new-paid", "entered_intervention_at"])
    assert api.participants()["code"].eq("new-paid").sum() == 1
    with pytest.raises(ApiError, match="status 500: Participant with that email does not exist"):
        api.update_participant("nobody", is_paid=True)


BAD_INPUTS = [
    ("create_participant", ("c",), {"arm": "Treatment"}, "arm='Treatment' is not an arm"),
    ("create_participant", ("c",), {"arm": True}, "arm=True is not an arm"),
    ("create_participant", ("c",), {"is_paid": 1}, "is_paid=1 is not True or False"),
    ("create_participant", ("",), {}, "is not a participant code"),
    ("update_participant", ("c",), {"phase": 3}, "phase=3 is not a phase"),
    ("update_participant", ("c",), {}, "update_participant got nothing to change"),
    ("update_participant", ("c",), {"channel_source_id": 0}, "channel_source_id=0 is not a whole number of at least 1"),
    ("add_vouchers", ("abc",), {}, "is not a list of voucher codes"),
    ("add_vouchers", (["a", "a"],), {}, "codes repeats 'a'"),
    ("add_vouchers", ([""],), {}, "which is not one of the voucher codes"),
    ("create_channel_source", ([],), {}, "channel_ids is empty"),
    ("update_channel_source", (1, ["c"]), {"reset_participant_positions": "yes"}, "is not True or False"),
    ("set_channel_rotation_speed", (0,), {}, "hours=0 is not a positive number of hours"),
    ("set_channel_rotation_speed", (math.nan,), {}, "is not a positive number of hours"),
]


@pytest.mark.parametrize("method, args, kwargs, message", BAD_INPUTS)
def test_inputs_are_checked_before_sending(fresh, method, args, kwargs, message):
    with pytest.raises(WorkbenchError) as caught:
        getattr(client(fresh), method)(*args, **kwargs)
    text = str(caught.value)
    assert message in text and text.count(". ") == 0 and text.endswith("."), text
    assert fresh.requests == []


def test_participants_are_uploaded_by_csv(fresh, tmp_path):
    api = client(fresh)
    existing = fresh.participants[next(iter(fresh.participants))]
    other_arm = "control" if existing["arm"] == "treatment" else "treatment"
    good = tmp_path / "participants.csv"
    good.write_text(f"code,arm,isPaid,phase\nup-1,treatment,1,\nup-2,control,,1\n{existing['code']},{other_arm},,\n")
    # production counts an arm change twice (uploadParticipants.ts): one participant updated, "Updated 2"
    assert api.upload_participants_csv(good) == "Created 2 new participants. Updated 2 existing participants."
    assert fresh.participants["up-1"]["isPaid"] is True and fresh.participants["up-2"]["phase"] == 1
    assert fresh.participants[existing["code"]]["arm"] == other_arm
    sent = len(fresh.requests)
    for text, message in (
        ("code,arm\nx,Treatment\n", "line 2 has arm 'Treatment'"),
        ("code,arm,isPaid\nx,control,yes\n", "line 2 has isPaid 'yes'"),
        ("code,group\nx,control\n", "the server reads code, arm, isPaid and phase"),
        ("code,arm\n", "has no participant rows"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(WorkbenchError, match=message):
            api.upload_participants_csv(bad)
    assert len(fresh.requests) == sent


def test_vouchers_channel_sources_and_rotation_speed(fresh):
    api = client(fresh)
    saved = api.add_vouchers(["gift-1", "gift-2"])
    assert [v["voucherCode"] for v in saved] == ["gift-1", "gift-2"] and all(v["id"] for v in saved)
    with pytest.raises(ApiError, match="status 500: duplicate key value"):
        api.add_vouchers(["gift-1"])
    first = api.create_channel_source(["UC1", "UC2"], title="first", is_default=False)
    assert first["isDefault"] is True  # the first source is the default whatever is asked
    second = api.create_channel_source(["UC3"], title="second")
    assert second["isDefault"] is False and fresh.requests[-1][2] == {
        "channelIds": ["UC3"],
        "title": "second",
        "isDefault": False,
    }
    kept = api.update_channel_source(first["id"], ["UC9"], reset_participant_positions=True)  # retried with isDefault
    assert kept["isDefault"] is True and fresh.channel_items[first["id"]] == ["UC9"]
    assert fresh.requests[-1][2]["isDefault"] is True and "isDefault" not in fresh.requests[-2][2]
    with pytest.raises(ApiError, match="status 500: Cannot unset default channel source"):
        api.update_channel_source(first["id"], ["UC9"], is_default=False)
    with pytest.raises(ApiError, match="kept its title 'second'"):
        api.update_channel_source(second["id"], ["UC4"], title="renamed")
    assert fresh.channel_items[second["id"]] == ["UC4"]  # the channels were replaced all the same
    assert api.update_channel_source(second["id"], ["UC5"], title="renamed", is_default=True)["title"] == "renamed"
    with pytest.raises(ApiError, match="status 500: Channel source not found"):
        api.update_channel_source(99, ["UC1"], is_default=True)
    assert api.channel_rotation_speed() == 24.0  # never set
    assert api.set_channel_rotation_speed(12.5) == 12.5 and api.channel_rotation_speed() == 12.5
    api.set_channel_rotation_speed(0.1)
    assert api.channel_rotation_speed() == pytest.approx(0.1)  # stored as real
    assert [r[2] for r in fresh.requests if r[1] == "/api/channel-rotation-speed" and r[0] == "POST"] == [
        {"speedHours": 12.5},
        {"speedHours": 0.1},
    ]


def test_the_cli_reads_the_token_from_the_environment(fresh, monkeypatch):
    from workbench.cli.app import app

    runner = CliRunner()
    monkeypatch.delenv("YTDPNL_API_TOKEN", raising=False)
    monkeypatch.setenv("YTDPNL_API_URL", fresh.url)
    result = runner.invoke(app, ["study", "api", "rotation-speed"])
    assert result.exit_code == 1 and "YTDPNL_API_TOKEN" in result.output
    monkeypatch.setenv("YTDPNL_API_TOKEN", TOKEN)
    result = runner.invoke(app, ["study", "api", "create-participant", "cli-1", "--arm", "1", "--paid"])
    assert result.exit_code == 0 and json.loads(result.output)["isPaid"] is True
    result = runner.invoke(app, ["study", "api", "update-participant", "cli-1", "--phase", "1"])
    assert result.exit_code == 0 and json.loads(result.output)["isPaid"] is True
    result = runner.invoke(app, ["study", "api", "summary", "cli-1"])
    assert result.exit_code == 0 and result.output.startswith("code,session_id")
    assert runner.invoke(app, ["study", "api", "rotation-speed", "--set", "6"]).output.strip() == "6.0"
    result = runner.invoke(app, ["study", "api", "create-channel-source", "UCa", "UCb", "--title", "news"])
    created = json.loads(result.output)
    assert result.exit_code == 0 and fresh.channel_items[created["id"]] == ["UCa", "UCb"]
    assert fresh.requests[-1][2] == {"channelIds": ["UCa", "UCb"], "title": "news", "isDefault": False}
    result = runner.invoke(
        app, ["study", "api", "update-channel-source", str(created["id"]), "UCc", "--default", "--reset-positions"]
    )
    assert result.exit_code == 0 and json.loads(result.output)["isDefault"] is True
    assert fresh.channel_items[created["id"]] == ["UCc"]
    assert fresh.requests[-1][2] == {"channelIds": ["UCc"], "isDefault": True, "resetParticipantPositions": True}
    result = runner.invoke(app, ["study", "api", "summary", "nobody"])
    assert result.exit_code == 1 and "Participant not found" in result.output and TOKEN not in result.output
    monkeypatch.setenv("YTDPNL_API_TOKEN", "wrong-token")
    result = runner.invoke(app, ["study", "api", "participants"])
    assert result.exit_code == 1 and "status 401: Invalid token" in result.output


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

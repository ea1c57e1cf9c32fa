"""The regions on real Postgres servers joined by logical replication through the link proxy:
partitions, concurrent writes, heals, convergence, anti-entropy, bad input."""

from __future__ import annotations

import base64

import pytest
from pycrdt import Doc, Text
from rest_framework.test import APIClient

from causal.clocks import VectorClock
from causal.context import context_encode
from regions.conf import region_addresses
from regions.db import region_connect
from regions.links import link_control, links_status
from regions.merkle import roots
from regions.schema import subscription_name
from tests.factories import StaffFactory
from tests.regions.conftest import heal, partition, wait_converged, wait_until

pytestmark = [pytest.mark.regions, pytest.mark.django_db]

CONTEXT = "HTTP_X_CAUSAL_CONTEXT"


def put(client: APIClient, region: str, kind: str, key: str, body, *, context=None):
    extra = {CONTEXT: context} if context is not None else {}
    return client.put(f"/api/regions/{region}/{kind}/{key}", body, format="json", **extra)


def get(client: APIClient, region: str, kind: str, key: str):
    return client.get(f"/api/regions/{region}/{kind}/{key}")


def ok_put(client, region, kind, key, body, *, context=None):
    response = put(client, region, kind, key, body, context=context)
    assert response.status_code == 200, response.content
    return response


def read_everywhere(client, kind, key) -> dict:
    return {region: get(client, region, kind, key).json() for region in ("r1", "r2", "r3")}


def split(client) -> None:
    partition(client, ["r1"], ["r2", "r3"])


# ---- replication and convergence ---------------------------------------------------------


def test_a_write_in_one_region_reaches_the_other_two(regions, staff_client, key):
    ok_put(staff_client, "r1", "lww", key, {"value": "hello"})

    wait_converged()

    assert [body["value"] for body in read_everywhere(staff_client, "lww", key).values()] == [
        "hello"
    ] * 3


def test_both_sides_stay_writable_in_a_partition_and_converge_after_the_heal(
    regions, staff_client, key
):
    split(staff_client)
    for region in ("r1", "r2", "r3"):
        ok_put(staff_client, region, "counter", key, {"increment": 1})
        ok_put(staff_client, region, "mv", key, {"value": region})
    assert len(set(roots().values())) > 1

    heal(staff_client)

    found = wait_converged()
    assert len(set(found.values())) == 1


def test_a_partition_keeps_each_side_apart_until_the_heal(regions, staff_client, key):
    split(staff_client)

    ok_put(staff_client, "r1", "lww", key, {"value": "left"})
    wait_until(lambda: get(staff_client, "r1", "lww", key).status_code == 200)

    assert get(staff_client, "r2", "lww", key).status_code == 404


# ---- mv: siblings exactly for concurrent writes --------------------------------------------


def test_truly_concurrent_mv_writes_become_siblings_answered_300(regions, staff_client, key):
    split(staff_client)
    ok_put(staff_client, "r1", "mv", key, {"value": "left"})
    ok_put(staff_client, "r2", "mv", key, {"value": "right"})
    heal(staff_client)
    wait_converged()

    response = get(staff_client, "r3", "mv", key)

    assert response.status_code == 300
    assert sorted(s["value"] for s in response.json()["siblings"]) == ["left", "right"]


def test_causally_ordered_mv_writes_leave_no_sibling(regions, staff_client, key):
    ok_put(staff_client, "r1", "mv", key, {"value": "first"})
    wait_converged()
    seen = get(staff_client, "r2", "mv", key)

    ok_put(staff_client, "r2", "mv", key, {"value": "second"}, context=seen["X-Causal-Context"])
    wait_converged()

    response = get(staff_client, "r1", "mv", key)
    assert (response.status_code, response.json()["value"]) == (200, "second")


def test_a_write_without_context_after_a_read_elsewhere_is_a_sibling(regions, staff_client, key):
    ok_put(staff_client, "r1", "mv", key, {"value": "first"})
    wait_converged()

    ok_put(staff_client, "r2", "mv", key, {"value": "blind"})
    wait_converged()

    assert get(staff_client, "r3", "mv", key).status_code == 300


def test_a_write_with_the_siblings_context_resolves_them_everywhere(regions, staff_client, key):
    split(staff_client)
    ok_put(staff_client, "r1", "mv", key, {"value": "left"})
    ok_put(staff_client, "r2", "mv", key, {"value": "right"})
    heal(staff_client)
    wait_converged()
    siblings = get(staff_client, "r3", "mv", key)

    ok_put(staff_client, "r3", "mv", key, {"value": "merged"}, context=siblings["X-Causal-Context"])
    wait_converged()

    bodies = read_everywhere(staff_client, "mv", key)
    assert [body.get("value") for body in bodies.values()] == ["merged"] * 3


# ---- the merged types ---------------------------------------------------------------------


def test_orset_add_wins_over_a_concurrent_remove(regions, staff_client, key):
    ok_put(staff_client, "r1", "orset", key, {"add": "apple"})
    wait_converged()
    split(staff_client)
    ok_put(staff_client, "r1", "orset", key, {"remove": "apple"})
    ok_put(staff_client, "r2", "orset", key, {"add": "apple"})

    heal(staff_client)
    wait_converged()

    assert [b["value"] for b in read_everywhere(staff_client, "orset", key).values()] == [
        ["apple"]
    ] * 3


def test_orset_remove_of_an_observed_add_removes_it_everywhere(regions, staff_client, key):
    ok_put(staff_client, "r1", "orset", key, {"add": "pear"})
    wait_converged()

    ok_put(staff_client, "r2", "orset", key, {"remove": "pear"})
    wait_converged()

    assert [b["value"] for b in read_everywhere(staff_client, "orset", key).values()] == [[]] * 3


def test_counters_are_exact_after_a_heal(regions, staff_client, key):
    split(staff_client)
    expected = {"counter": 0, "gcounter": 0}
    for step in range(6):
        region = ("r1", "r2", "r3")[step % 3]
        ok_put(staff_client, region, "counter", key, {"increment": step + 1})
        ok_put(staff_client, region, "counter", key, {"decrement": 1})
        ok_put(staff_client, region, "gcounter", key, {"increment": 2})
        expected["counter"] += step
        expected["gcounter"] += 2

    heal(staff_client)
    wait_converged()

    for kind, total in expected.items():
        values = [b["value"] for b in read_everywhere(staff_client, kind, key).values()]
        assert values == [total] * 3


def test_concurrent_text_edits_keep_both_sides_words(regions, staff_client, key):
    ok_put(staff_client, "r1", "doc", key, {"insert": {"index": 0, "text": "shared"}})
    wait_converged()
    split(staff_client)
    ok_put(staff_client, "r1", "doc", key, {"insert": {"index": 0, "text": "left "}})
    ok_put(staff_client, "r2", "doc", key, {"insert": {"index": 6, "text": " right"}})

    heal(staff_client)
    wait_converged()

    values = {b["value"] for b in read_everywhere(staff_client, "doc", key).values()}
    assert values == {"left shared right"}


def test_a_yjs_update_from_a_client_is_merged(regions, staff_client, key):
    ok_put(staff_client, "r1", "doc", key, {"insert": {"index": 0, "text": "base"}})
    client_doc = Doc()
    client_doc.get("text", type=Text).insert(0, "yjs ")

    update = base64.b64encode(client_doc.get_update()).decode()
    response = ok_put(staff_client, "r1", "doc", key, {"update": update})

    value = response.json()["value"]
    assert ("base" in value, "yjs " in value, len(value)) == (True, True, 8)


# ---- lww ------------------------------------------------------------------------------------


def test_lww_keeps_the_latest_and_reports_the_concurrent_write_it_dropped(
    regions, staff_client, key
):
    split(staff_client)
    ok_put(staff_client, "r2", "lww", key, {"value": "older"})
    ok_put(staff_client, "r1", "lww", key, {"value": "newer"})
    heal(staff_client)
    wait_converged()

    body = get(staff_client, "r3", "lww", key).json()

    assert body["value"] == "newer"
    assert [(d["dot"][0], d["value"]) for d in body["discarded"]] == [("r2", "older")]


def test_anti_entropy_reconciliation_counts_the_lww_writes_it_discards(regions, staff_client, key):
    split(staff_client)
    ok_put(staff_client, "r2", "lww", key, {"value": "older"})
    ok_put(staff_client, "r1", "lww", key, {"value": "newer"})
    heal(staff_client)
    wait_converged()

    report = staff_client.post("/api/regions/anti-entropy").json()

    assert report["reconciled"]["r1"]["lww_discarded"] >= 1
    wait_converged()
    assert get(staff_client, "r2", "lww", key).json()["discarded"][0]["value"] == "older"


# ---- tombstones: order of arrival does not matter ------------------------------------------


def test_a_tombstone_arriving_before_its_row_keeps_the_row_out(regions, staff_client, key):
    control = link_control()
    control.set("r1->r2", cut=True)
    first = ok_put(staff_client, "r1", "mv", key, {"value": "v1"})
    wait_until(lambda: get(staff_client, "r3", "mv", key).status_code == 200)
    ok_put(staff_client, "r3", "mv", key, {"value": "v2"}, context=first["X-Causal-Context"])
    wait_until(lambda: get(staff_client, "r2", "mv", key).status_code == 200)

    control.set("r1->r2", cut=False)
    wait_converged()

    with region_connect("r2") as conn:
        (rows,) = conn.execute(
            "SELECT count(*) FROM regions_row WHERE key = %s AND origin = 'r1'", (key,)
        ).fetchone()
    assert (rows, get(staff_client, "r2", "mv", key).json()["value"]) == (0, "v2")


def test_a_row_and_its_tombstone_arriving_at_once_leave_no_row(regions, key):
    """Two apply workers (here two sessions) insert a row and its tombstone concurrently: the
    triggers take the key's lock, so the later one sees the earlier one's commit."""
    import threading

    values = ("mv", key, "r9", 1)
    with region_connect("r1", autocommit=False) as row_session:
        row_session.execute(
            "INSERT INTO regions_row (kind, key, origin, counter, context, value) "
            "VALUES (%s, %s, %s, %s, '{}', '1')",
            values,
        )

        def tombstone() -> None:
            with region_connect("r1") as conn:
                conn.execute(
                    "INSERT INTO regions_tombstone (kind, key, origin, counter, by_region, reason) "
                    "VALUES (%s, %s, %s, %s, 'r2', 'overwritten')",
                    values,
                )

        other = threading.Thread(target=tombstone)
        other.start()
        other.join(timeout=0.5)
        row_session.commit()
    other.join(timeout=10)

    with region_connect("r1") as conn:
        (rows,) = conn.execute("SELECT count(*) FROM regions_row WHERE key = %s", (key,)).fetchone()
    assert rows == 0


# ---- anti-entropy ---------------------------------------------------------------------------


def _exceed_wal_bound(publisher: str, slot: str) -> None:
    """Write WAL on `publisher` (segment switches, checkpoints) until `slot` is lost."""
    with region_connect(publisher) as conn:

        def lost() -> bool:
            conn.execute("SELECT pg_logical_emit_message(false, 'statelab-test', 'x')")
            conn.execute("SELECT pg_switch_wal()")
            conn.execute("CHECKPOINT")
            row = conn.execute(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            return row is not None and row[0] == "lost"

        wait_until(lost, timeout_s=90)


def test_a_link_cut_past_its_wal_bound_is_reported_lost_and_anti_entropy_repairs_it(
    regions, staff_client, key
):
    control = link_control()
    control.set("r1->r2", cut=True)
    ok_put(staff_client, "r1", "lww", key, {"value": "while cut"})
    slot = subscription_name(region_addresses()["r2"].database, "r1", "r2")
    _exceed_wal_bound("r1", slot)
    control.set("r1->r2", cut=False)
    states = {link.name: link.state for link in links_status()}

    report = staff_client.post("/api/regions/anti-entropy").json()

    assert states["r1->r2"] == "lost"
    assert report["reconciled"]["links_recovered"] == {"r1->r2": "recreated"}
    assert report["rows_copied"] >= 1
    assert get(staff_client, "r2", "lww", key).json()["value"] == "while cut"


def test_a_recreated_link_streams_again(regions, staff_client, key):
    control = link_control()
    control.set("r1->r2", cut=True)
    slot = subscription_name(region_addresses()["r2"].database, "r1", "r2")
    _exceed_wal_bound("r1", slot)
    control.set("r1->r2", cut=False)
    staff_client.post("/api/regions/anti-entropy")

    ok_put(staff_client, "r1", "lww", key, {"value": "after"})

    wait_until(lambda: get(staff_client, "r2", "lww", key).status_code == 200)


def test_anti_entropy_restores_a_row_changed_by_hand(regions, staff_client, key):
    ok_put(staff_client, "r1", "lww", key, {"value": "true"})
    wait_converged()
    with region_connect("r2") as conn:
        conn.execute("UPDATE regions_row SET value = '\"forged\"' WHERE key = %s", (key,))

    report = staff_client.post("/api/regions/anti-entropy").json()

    assert report["rows_corrected"] == 1
    assert get(staff_client, "r2", "lww", key).json()["value"] == "true"


def test_anti_entropy_compares_far_fewer_hashes_than_keys_held(regions, staff_client, key):
    for index in range(40):
        ok_put(staff_client, "r1", "gcounter", f"{key}-{index}", {"increment": 1})
    wait_converged()
    with region_connect("r3") as conn:
        conn.execute("DELETE FROM regions_row WHERE key = %s", (f"{key}-7",))

    report = staff_client.post("/api/regions/anti-entropy").json()

    assert (report["keys_repaired"], report["rows_copied"]) == (1, 1)
    assert report["hashes_compared"] < 3 * 2 * 11
    assert report["keys_held"]["r1"] >= 40


def test_a_second_anti_entropy_round_finds_nothing_to_repair(regions, staff_client, key):
    ok_put(staff_client, "r1", "lww", key, {"value": 1})
    wait_converged()
    with region_connect("r3") as conn:
        conn.execute("DELETE FROM regions_row WHERE key = %s", (key,))
    staff_client.post("/api/regions/anti-entropy")

    report = staff_client.post("/api/regions/anti-entropy").json()

    assert (report["leaves_differing"], report["rows_copied"]) == (0, 0)


# ---- bad input: a clear 4xx, nothing changed ------------------------------------------------


def _forged_context(kind: str, key: str) -> str:
    return context_encode(VectorClock.of({"r1": 99}), key=b"not-the-server-key", scope=key)


BAD_REQUESTS = [
    ("unknown region", "r9", "lww", {"value": 1}, None, 404, "region_unknown"),
    ("unknown type", "r1", "blob", {"value": 1}, None, 404, "region_type_unknown"),
    ("oversized value", "r1", "mv", {"value": "x" * 20_000}, None, 413, "region_value_too_large"),
    ("wrong body", "r1", "counter", {"value": 3}, None, 400, "region_body_invalid"),
    ("zero increment", "r1", "gcounter", {"increment": 0}, None, 400, "region_body_invalid"),
    ("orset object", "r1", "orset", {"add": {"a": 1}}, None, 400, "region_body_invalid"),
    ("doc garbage", "r1", "doc", {"update": "bm90IHlqcw=="}, None, 400, "region_body_invalid"),
    ("malformed context", "r1", "mv", {"value": 1}, "not-a-context", 400, "causal_context_invalid"),
    ("forged context", "r1", "mv", {"value": 1}, "forged", 400, "causal_context_invalid"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_input_answers_a_clear_4xx_and_changes_nothing(regions, staff_client, key, case):
    _name, region, kind, body, context, status, code = case
    if context == "forged":
        context = _forged_context(kind, key)
    before = roots()

    response = put(staff_client, region, kind, key, body, context=context)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert roots() == before


def test_a_context_issued_for_another_key_is_refused(regions, staff_client, key):
    other = ok_put(staff_client, "r1", "mv", f"{key}-other", {"value": 1})

    response = put(staff_client, "r1", "mv", key, {"value": 2}, context=other["X-Causal-Context"])

    assert (response.status_code, response.json()["code"]) == (400, "causal_context_invalid")


def test_reading_a_key_never_written_is_404(regions, staff_client, key):
    response = get(staff_client, "r1", "mv", key)

    assert (response.status_code, response.json()["code"]) == (404, "region_key_not_found")


# ---- network switches, overview, readiness, metrics -----------------------------------------


def test_only_staff_may_partition(regions, key):
    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory())

    response = client.put("/api/regions/network", {"groups": [["r1"], ["r2", "r3"]]}, format="json")

    assert response.status_code == 403
    assert not any(route["cut"] for route in link_control().status().values())


@pytest.mark.parametrize(
    "body",
    [
        {"groups": [["r1"], ["r2"]]},
        {"groups": [["r1", "r2"], ["r2", "r3"]]},
        {"groups": [["r1", "r4"], ["r2", "r3"]]},
        {"delays": {"r1->r9": 10}},
        {"delays": {"r1->r2": -1}},
        {"nothing": 1},
    ],
)
def test_an_invalid_network_answers_400_and_cuts_nothing(regions, staff_client, body):
    response = staff_client.put("/api/regions/network", body, format="json")

    assert response.status_code == 400
    assert not any(route["cut"] for route in link_control().status().values())


def test_a_delay_per_link_reaches_the_proxy(regions, staff_client):
    response = staff_client.put("/api/regions/network", {"delays": {"r1->r2": 150}}, format="json")

    assert response.status_code == 200
    assert link_control().status()["r1->r2"]["delay_ms"] == 150


def test_the_overview_shows_regions_links_their_state_and_the_partition(regions, staff_client):
    split(staff_client)

    body = staff_client.get("/api/regions/").json()

    assert [region["name"] for region in body["regions"]] == ["r1", "r2", "r3"]
    states = {link["name"]: link["state"] for link in body["links"]}
    assert states["r1->r2"] == "cut"
    assert states["r2->r3"] != "cut"
    assert body["network"]["partitioned"] is True


def test_the_overview_clocks_the_convergence_after_a_heal(regions, staff_client, key):
    split(staff_client)
    ok_put(staff_client, "r1", "counter", key, {"increment": 1})
    heal(staff_client)
    wait_converged()

    network = staff_client.get("/api/regions/").json()["network"]

    assert network["convergence_s"] is not None
    assert network["convergence_s"] >= 0


@pytest.mark.django_db(databases="__all__")
def test_readyz_shows_the_regions_when_configured(regions, staff_client, settings):
    settings.REGIONS = {**settings.REGIONS, "readiness": True}

    checks = staff_client.get("/readyz").json()["checks"]

    assert all(checks[f"region:{region}"]["ok"] for region in ("r1", "r2", "r3"))


@pytest.mark.django_db(databases="__all__")
def test_metrics_show_the_lag_of_every_link(regions, staff_client, settings):
    settings.REGIONS = {**settings.REGIONS, "readiness": True}

    text = staff_client.get("/metrics").content.decode()

    assert 'statelab_regions_link_lag_bytes{link="r1->r2"}' in text
    assert "statelab_regions_siblings_open" in text


# ---- the vignette, the Lab, the admin ---------------------------------------------------


def test_split_brain_prints_the_timeline_and_the_casualties(regions, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()

    call_command(
        "split_brain", "--partition-s", "2", "--keys", "8", "--out-dir", tmp_path, stdout=out
    )

    text = out.getvalue()
    assert "partition {r1} | {r2, r3}" in text
    assert "every region equal" in text
    assert "needing manual resolution" in text
    assert "divergent forever" in text
    assert "counters exact {'counter': True, 'gcounter': True}" in text
    assert (tmp_path / "split_brain_history.jsonl").stat().st_size > 0


def test_only_staff_may_start_the_vignette(regions):
    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory())

    assert client.post("/api/regions/split-brain").status_code == 403


def test_the_lab_page_has_the_regions_panel_and_its_script(regions):
    from django.test import Client

    client = Client()
    client.force_login(StaffFactory())

    body = client.get("/lab/").content.decode()

    assert 'id="panel-regions"' in body
    assert "/static/lab/regions.js" in body
    assert 'id="regions-split"' in body


def test_the_admin_resolves_a_keys_siblings(regions, staff_client, key):
    from django.test import Client

    split(staff_client)
    ok_put(staff_client, "r1", "mv", key, {"value": "left"})
    ok_put(staff_client, "r2", "mv", key, {"value": "right"})
    heal(staff_client)
    wait_converged()
    admin = Client()
    admin.force_login(StaffFactory(is_superuser=True))
    page = admin.get(f"/admin/regions/regionnetwork/siblings/r1/{key}/")
    token = page.context["context_token"]

    admin.post(
        f"/admin/regions/regionnetwork/siblings/r1/{key}/", {"choice": "0", "context": token}
    )

    response = get(staff_client, "r1", "mv", key)
    assert (response.status_code, response.json()["value"]) == (200, "left")

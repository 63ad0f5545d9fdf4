"""CRM connector against its simulator: signed requests, member upsert, idempotent points."""
from __future__ import annotations

import pytest
import requests

from connectors.base import MappingError, PermanentError, TransientError
from connectors.crm import crm_signature
from hub.domain.model import Buyer
from sandbox.crm import CrmSimulator
from tests.connectors.conftest import simulator

sim = simulator(CrmSimulator)


@pytest.fixture
def crm(make_connector, sim):
    return make_connector("crm", sim, timeout=1.0)


def test_upsert_creates_then_updates_the_same_member(sim, crm):
    member_id = crm.upsert_member(Buyer("B-1", "Han Meimei", "13900000001"))
    assert crm.upsert_member(Buyer("B-1", "Han Meimei (VIP)", "13900000001")) == member_id
    assert len(sim.members) == 1
    assert sim.members[member_id].name == "Han Meimei (VIP)"
    sent = sim.requests_to("/v1/members/B-1")[0].json()
    assert sent == {"external_ref": "B-1", "name": "Han Meimei", "mobile": "13900000001"}


def test_upsert_links_a_known_phone_instead_of_duplicating(sim, crm):
    first = crm.upsert_member(Buyer("B-1", "Li", "13900000002"))
    assert crm.upsert_member(Buyer("B-2", "Li", "13900000002")) == first
    assert len(sim.members) == 1


def test_points_are_added_once_per_order(sim, crm):
    member_id = crm.upsert_member(Buyer("B-3", phone="13900000003"))
    crm.add_points(member_id, "O-1", 120)
    crm.add_points(member_id, "O-1", 120)       # a redelivered "order completed"
    crm.add_points(member_id, "O-2", 30)
    assert sim.members[member_id].points == 150
    assert [e["order_no"] for e in sim.point_entries] == ["O-1", "O-2"]
    replay = sim.requests_to(f"/v1/members/{member_id}/points")[1]
    assert replay.headers["Idempotency-Key"] == "points-O-1"


def test_requests_are_signed(sim, crm, credentials):
    crm.upsert_member(Buyer("B-4"))
    req = sim.received[-1]
    expected = crm_signature(credentials["HUB_CRM_API_KEY"], "PUT", req.path, req.headers["X-Timestamp"], req.body)
    assert req.headers["X-Signature"] == expected and req.headers["X-Api-Key"] == "o2o-hub"
    assert credentials["HUB_CRM_API_KEY"] not in str(req.headers)   # the secret itself never travels


def test_wrong_secret_is_refused_once_not_retried(sim, make_connector):
    crm = make_connector("crm", sim, api_key="not-the-crm-secret")
    with pytest.raises(PermanentError, match="invalid_signature"):
        crm.upsert_member(Buyer("B-5"))
    assert len(sim.received) == 1 and sim.members == {}


def test_unknown_member_is_permanent(sim, crm):
    with pytest.raises(PermanentError, match="member_not_found"):
        crm.add_points("M999999", "O-9", 10)
    assert len(sim.received) == 1


def test_validation_error_is_permanent(sim, crm):
    with pytest.raises(PermanentError, match="validation_error.*mobile"):
        crm.upsert_member(Buyer("B-6", phone="call me"))
    assert len(sim.received) == 1


def test_non_positive_points_never_leave(sim, crm):
    with pytest.raises(MappingError, match="positive"):
        crm.add_points("M000001", "O-1", 0)
    assert sim.received == []


def test_missing_buyer_id_is_a_mapping_error(sim, crm):
    with pytest.raises(MappingError, match="missing required field"):
        crm.mapping.outbound("member", {"name": "x"})


@pytest.mark.parametrize("status,retry_after", [(503, None), (500, None), (429, 0.02)])
def test_transient_faults_retried_to_success(sim, crm, status, retry_after):
    member_id = crm.upsert_member(Buyer("B-7"))
    sim.faults.fail_next, sim.faults.error_status, sim.faults.retry_after = 2, status, retry_after
    crm.add_points(member_id, "O-7", 5)
    assert sim.members[member_id].points == 5
    assert len(sim.requests_to(f"/v1/members/{member_id}/points")) == 3


def test_timeout_retried(sim, crm):
    sim.faults.timeout_next, sim.faults.timeout_s = 1, 3.0   # well past the 1 s client timeout
    assert crm.upsert_member(Buyer("B-8")).startswith("M")
    assert len(sim.requests_to("/v1/members/B-8")) == 2


def test_outage_gives_up_transient(sim, crm):
    sim.faults.fail_next = 99
    with pytest.raises(TransientError, match="503"):
        crm.upsert_member(Buyer("B-9"))
    assert len(sim.received) == 4
    assert crm.outage_wait_s > 0 and excinfo_wait(crm) == crm.outage_wait_s   # kept for later, not parked


def excinfo_wait(crm) -> float | None:
    with pytest.raises(TransientError) as caught:
        crm.upsert_member(Buyer("B-9"))
    return caught.value.wait_up_to


def test_the_fault_endpoint_takes_the_crm_down_for_a_while_and_fails_chosen_calls(sim, crm):
    member_id = crm.upsert_member(Buyer("B-10"))
    r = requests.post(sim.base_url + "/_sim/faults", json={"fail_next": 1, "only_paths": ["/v1/coupons/"]},
                      timeout=5)
    assert r.status_code == 200
    crm.add_points(member_id, "O-10", 5)                               # another path: untouched
    sim.issue_coupon(member_id, "CPN-10", 100)
    assert crm.coupon("lock", "CPN-10", member_id, "K-10") == 100       # the one failure, retried past
    assert [r.path for r in sim.received].count("/v1/coupons/CPN-10/lock") == 2
    requests.post(sim.base_url + "/_sim/faults", json={"down_for_s": 60}, timeout=5).raise_for_status()
    with pytest.raises(TransientError, match="503"):
        crm.coupon("use", "CPN-10", member_id, "K-10")
    requests.post(sim.base_url + "/_sim/faults", json={}, timeout=5).raise_for_status()    # back
    crm.coupon("use", "CPN-10", member_id, "K-10")
    assert sim.wallet.ledger == [("CPN-10", "lock"), ("CPN-10", "use")]
    assert requests.post(sim.base_url + "/_sim/faults", json={"fail_next": "x"}, timeout=5).status_code == 400

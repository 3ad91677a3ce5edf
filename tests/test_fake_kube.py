"""The FAKE Kubernetes API server (tests/fake_kube.py) against the documented wire format.

Every test talks real HTTP to it, so what is checked is what a client would see: status
codes, content types, `Status` bodies, resourceVersions and chunked watch streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.fake_kube import (
    CORE_EVENTS,
    ROLLOUTS,
    FakeKube,
    json_patch,
    merge_patch,
)

NS = "shop"
RO = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
MP = {"Content-Type": "application/merge-patch+json"}
JP = {"Content-Type": "application/json-patch+json"}


def rollout(name: str = "web", image: str = "web:1", steps: list[Any] | None = None) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image}]}},
            "strategy": {"canary": {
                "canaryService": f"{name}-canary", "stableService": f"{name}-stable",
                "steps": steps if steps is not None else [
                    {"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]}},
        },
    }


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube(time_scale=0.05) as fake:
        yield fake
        assert fake.internal_errors == []  # the fake never failed on its own


@pytest.fixture
def http(kube: FakeKube) -> Iterator[requests.Session]:
    session = requests.Session()
    yield session
    session.close()


def url(kube: FakeKube, path: str) -> str:
    return kube.url + path


def create(kube: FakeKube, http: requests.Session, body: dict, path: str = RO) -> dict:
    r = http.post(url(kube, path), json=body, timeout=2)
    assert r.status_code == 201, r.text
    return r.json()


def events(resp: requests.Response) -> Iterator[dict]:
    for line in resp.iter_lines():
        if line:
            yield json.loads(line)


def status_of(r: requests.Response, code: int, reason: str) -> dict:
    assert r.status_code == code, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure" and body["reason"] == reason and body["code"] == code
    return body


# --- CRUD basics ----------------------------------------------------------------------


def test_create_get_list_and_not_found(kube: FakeKube, http: requests.Session) -> None:
    body = rollout()
    body["status"] = {"phase": "Healthy"}
    made = create(kube, http, body)
    meta = made["metadata"]
    assert made["kind"] == "Rollout" and made["apiVersion"] == "argoproj.io/v1alpha1"
    assert meta["namespace"] == NS and meta["generation"] == 1
    assert isinstance(meta["resourceVersion"], str) and meta["uid"]
    assert datetime.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert "status" not in made  # POST to the main resource ignores the status stanza

    got = http.get(url(kube, f"{RO}/web"), timeout=2)
    assert got.status_code == 200 and got.headers["Content-Type"] == "application/json"
    assert got.json() == made

    create(kube, http, rollout("api"))
    other = "/apis/argoproj.io/v1alpha1/namespaces/other/rollouts"
    create(kube, http, rollout("zeta"), path=other)
    listed = http.get(url(kube, RO), timeout=2).json()
    assert listed["kind"] == "RolloutList" and listed["apiVersion"] == "argoproj.io/v1alpha1"
    assert listed["metadata"]["resourceVersion"] == kube.resource_version
    assert [i["metadata"]["name"] for i in listed["items"]] == ["api", "web"]
    assert all(i["kind"] == "Rollout" for i in listed["items"])  # CR list items keep kind

    everywhere = http.get(url(kube, "/apis/argoproj.io/v1alpha1/rollouts"), timeout=2).json()
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]] \
        == [("other", "zeta"), (NS, "api"), (NS, "web")]

    selected = http.get(url(kube, RO), params={"labelSelector": "app=api"}, timeout=2).json()
    assert [i["metadata"]["name"] for i in selected["items"]] == ["api"]

    missing = status_of(http.get(url(kube, f"{RO}/nope"), timeout=2), 404, "NotFound")
    assert missing["message"] == 'rollouts.argoproj.io "nope" not found'
    assert missing["details"] == {"name": "nope", "group": "argoproj.io", "kind": "rollouts"}

    again = status_of(http.post(url(kube, RO), json=rollout(), timeout=2), 409, "AlreadyExists")
    assert again["message"] == 'rollouts.argoproj.io "web" already exists'

    seeded = kube.seed(ROLLOUTS, NS, dict(rollout("old"), status={"phase": "Healthy"}))
    assert seeded["status"] == {"phase": "Healthy"}  # a seed keeps status, and is not logged
    assert all(r.path != f"{RO}/old" and r.body != seeded for r in kube.requests)

    unknown = status_of(http.get(url(kube, "/apis/argoproj.io/v1alpha1/widgets"), timeout=2),
                        404, "NotFound")
    assert unknown["message"] == "the server could not find the requested resource"


def test_list_paging_with_limit_and_continue(kube: FakeKube, http: requests.Session) -> None:
    for name in ("a", "b", "c"):
        create(kube, http, rollout(name))
    first = http.get(url(kube, RO), params={"limit": "2"}, timeout=2).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    token = first["metadata"]["continue"]
    rest = http.get(url(kube, RO), params={"limit": "2", "continue": token}, timeout=2).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c"]
    assert "continue" not in rest["metadata"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_put_with_stale_resource_version_is_409(kube: FakeKube, http: requests.Session) -> None:
    made = create(kube, http, rollout())
    fresh = dict(made, spec=dict(made["spec"], replicas=6))
    r = http.put(url(kube, f"{RO}/web"), json=fresh, timeout=2)
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["metadata"]["resourceVersion"] != made["metadata"]["resourceVersion"]
    assert updated["metadata"]["generation"] == 2  # a spec change

    stale = dict(made, spec=dict(made["spec"], replicas=7))  # still the first RV
    body = status_of(http.put(url(kube, f"{RO}/web"), json=stale, timeout=2), 409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on rollouts.argoproj.io "web": the object has been '
        "modified; please apply your changes to the latest version and try again")
    assert body["details"] == {"name": "web", "group": "argoproj.io", "kind": "rollouts"}
    assert kube.get_object(ROLLOUTS, NS, "web")["spec"]["replicas"] == 6

    # Custom resources refuse an unconditional update (no resourceVersion at all).
    bare = json.loads(json.dumps(updated))
    del bare["metadata"]["resourceVersion"]
    body = status_of(http.put(url(kube, f"{RO}/web"), json=bare, timeout=2), 422, "Invalid")
    assert body["message"].endswith("metadata.resourceVersion: Invalid value: 0x0: must be "
                                    "specified for an update")

    # A metadata-only change gets a new resourceVersion but keeps the generation.
    labelled = json.loads(json.dumps(updated))
    labelled["metadata"]["labels"]["team"] = "checkout"
    after = http.put(url(kube, f"{RO}/web"), json=labelled, timeout=2).json()
    assert after["metadata"]["generation"] == 2
    assert after["metadata"]["resourceVersion"] != updated["metadata"]["resourceVersion"]

    wrong = dict(labelled, metadata=dict(after["metadata"], name="other"))
    assert status_of(http.put(url(kube, f"{RO}/web"), json=wrong, timeout=2), 400,
                     "BadRequest")["message"] == (
        "the name of the object (other) does not match the name on the URL (web)")
    text = http.put(url(kube, f"{RO}/web"), data="{}", headers={"Content-Type": "text/plain"},
                    timeout=2)
    status_of(text, 415, "UnsupportedMediaType")


def test_merge_patch_versus_json_patch(kube: FakeKube, http: requests.Session) -> None:
    create(kube, http, rollout())
    path = url(kube, f"{RO}/web")
    # RFC 7386: a list is replaced whole, null deletes a key.
    r = http.patch(path, data=json.dumps({"metadata": {"labels": {"app": None, "tier": "fe"}},
                                          "spec": {"strategy": {"canary": {
                                              "steps": [{"setWeight": 50}]}}}}),
                   headers=MP, timeout=2)
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["metadata"]["labels"] == {"tier": "fe"}
    assert obj["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 50}]
    assert obj["spec"]["strategy"]["canary"]["canaryService"] == "web-canary"  # merged

    # RFC 6902: add, replace, remove and test, addressing list items by index.
    ops = [{"op": "test", "path": "/spec/replicas", "value": 5},
           {"op": "add", "path": "/spec/strategy/canary/steps/-", "value": {"pause": {}}},
           {"op": "replace", "path": "/spec/replicas", "value": 3},
           {"op": "remove", "path": "/metadata/labels/tier"},
           {"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "x"}}]
    obj = http.patch(path, data=json.dumps(ops), headers=JP, timeout=2).json()
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 50}, {"pause": {}}]
    assert obj["metadata"]["labels"] == {}
    assert obj["metadata"]["generation"] == 3

    failed = http.patch(path, data=json.dumps([{"op": "test", "path": "/spec/replicas",
                                                "value": 99},
                                               {"op": "replace", "path": "/spec/replicas",
                                                "value": 1}]), headers=JP, timeout=2)
    status_of(failed, 422, "Invalid")
    assert kube.get_object(ROLLOUTS, NS, "web")["spec"]["replicas"] == 3  # all or nothing
    status_of(http.patch(path, data=json.dumps({"op": "add"}), headers=JP, timeout=2),
              400, "BadRequest")
    status_of(http.patch(path, data=json.dumps([{"op": "add", "path": "/x"}]), headers=JP,
                         timeout=2), 400, "BadRequest")
    status_of(http.patch(path, data=json.dumps([{"op": "remove", "path": "/nope"}]),
                         headers=JP, timeout=2), 422, "Invalid")

    # A CRD has no strategic merge patch: the real server answers 415.
    smp = http.patch(path, data="{}",
                     headers={"Content-Type": "application/strategic-merge-patch+json"},
                     timeout=2)
    assert status_of(smp, 415, "UnsupportedMediaType")["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml")

    # A resourceVersion inside a patch is a precondition.
    stale = http.patch(path, data=json.dumps({"metadata": {"resourceVersion": "1"},
                                              "spec": {"paused": True}}), headers=MP, timeout=2)
    status_of(stale, 409, "Conflict")


def test_no_op_patch_writes_nothing(kube: FakeKube, http: requests.Session) -> None:
    made = create(kube, http, rollout())
    before = kube.resource_version
    r = http.patch(url(kube, f"{RO}/web"), data=json.dumps({"spec": {"replicas": 5}}),
                   headers=MP, timeout=2)
    assert r.json()["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
    assert kube.resource_version == before


def test_json_patch_and_merge_patch_functions_follow_the_rfcs() -> None:
    # RFC 7386 appendix A and RFC 6902 appendix A, a few of their examples.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert json_patch({"foo": ["bar", "baz"]},
                      [{"op": "add", "path": "/foo/1", "value": "qux"}]) == {
        "foo": ["bar", "qux", "baz"]}
    assert json_patch({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
                      [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]) == {
        "foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}
    assert json_patch({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10},
                                           {"op": "copy", "from": "/~1", "path": "/c"}]) == {
        "/": 9, "~1": 10, "c": 9}


# --- status subresource -------------------------------------------------------------------


def test_status_subresource_is_separate(kube: FakeKube, http: requests.Session) -> None:
    create(kube, http, rollout())
    kube.step_controller()  # the first deploy: status appears
    status = kube.get_object(ROLLOUTS, NS, "web")["status"]
    main = url(kube, f"{RO}/web")

    # The main resource ignores status changes and bumps the generation for spec ones.
    obj = http.patch(main, data=json.dumps({"spec": {"paused": True},
                                            "status": {"abort": True}}),
                     headers=MP, timeout=2).json()
    assert obj["spec"]["paused"] is True and obj["status"] == status
    assert obj["metadata"]["generation"] == 2

    # /status changes only the status and never the generation.
    obj = http.patch(main + "/status", data=json.dumps({"spec": {"replicas": 1},
                                                        "status": {"abort": True}}),
                     headers=MP, timeout=2).json()
    assert obj["status"]["abort"] is True and obj["spec"]["replicas"] == 5
    assert obj["metadata"]["generation"] == 2

    # PUT on /status: the same rule; GET on /status returns the whole object.
    whole = http.get(main + "/status", timeout=2).json()
    assert whole["kind"] == "Rollout" and whole["spec"]["replicas"] == 5
    whole["status"]["abort"] = False
    whole["spec"]["replicas"] = 2
    put = http.put(main + "/status", json=whole, timeout=2).json()
    assert put["status"]["abort"] is False and put["spec"]["replicas"] == 5
    stale = http.put(main + "/status", json=whole, timeout=2)  # whole still has the old RV
    status_of(stale, 409, "Conflict")


def test_without_the_status_subresource_status_is_404(kube: FakeKube,
                                                      http: requests.Session) -> None:
    kube.status_subresource = False  # a CRD installed without `subresources: status`
    made = create(kube, http, dict(rollout(), status={"abort": False}))
    assert made["status"] == {"abort": False}  # nothing strips it on create now
    main = url(kube, f"{RO}/web")
    abort = json.dumps({"status": {"abort": True}})
    missing = status_of(http.patch(main + "/status", data=abort, headers=MP, timeout=2),
                        404, "NotFound")
    assert missing["message"] == "the server could not find the requested resource"
    # Argo's fallback then patches the main resource, which now does change status.
    obj = http.patch(main, data=abort, headers=MP, timeout=2).json()
    assert obj["status"]["abort"] is True


# --- watch ----------------------------------------------------------------------------


def test_watch_from_a_list_resource_version_gets_modified(kube: FakeKube,
                                                          http: requests.Session) -> None:
    create(kube, http, rollout())
    listed = http.get(url(kube, RO), timeout=2).json()
    rv = listed["metadata"]["resourceVersion"]
    main = url(kube, f"{RO}/web")
    # Changes made before the watch opens, after the list, must still be delivered.
    first = http.patch(main, data=json.dumps({"spec": {"paused": True}}), headers=MP,
                       timeout=2).json()
    with requests.get(url(kube, RO), params={"watch": "1", "resourceVersion": rv},
                      stream=True, timeout=2) as w:
        assert w.status_code == 200
        assert w.headers["Content-Type"] == "application/json"
        assert w.headers["Transfer-Encoding"] == "chunked"
        stream = events(w)
        ev = next(stream)
        assert ev["type"] == "MODIFIED"
        assert ev["object"]["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        assert ev["object"]["kind"] == "Rollout"
        second = http.patch(main, data=json.dumps({"spec": {"paused": False}}), headers=MP,
                            timeout=2).json()
        ev = next(stream)
        assert ev["type"] == "MODIFIED" and ev["object"]["spec"]["paused"] is False
        assert ev["object"]["metadata"]["resourceVersion"] == \
            second["metadata"]["resourceVersion"]
        create(kube, http, rollout("api"))
        assert next(stream)["type"] == "ADDED"
        deleted = http.delete(url(kube, f"{RO}/api"), timeout=2).json()
        assert deleted["status"] == "Success" and deleted["details"]["name"] == "api"
        ev = next(stream)
        assert ev["type"] == "DELETED" and ev["object"]["metadata"]["name"] == "api"
        assert int(ev["object"]["metadata"]["resourceVersion"]) > \
            int(second["metadata"]["resourceVersion"])
    status_of(http.get(url(kube, f"{RO}/api"), timeout=2), 404, "NotFound")


def test_watch_without_resource_version_starts_with_added(kube: FakeKube,
                                                          http: requests.Session) -> None:
    create(kube, http, rollout("a"))
    create(kube, http, rollout("b"))
    with requests.get(url(kube, RO), params={"watch": "true", "fieldSelector":
                                             "metadata.name=b"}, stream=True, timeout=2) as w:
        stream = events(w)
        ev = next(stream)
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "b"
        http.patch(url(kube, f"{RO}/a"), data=json.dumps({"spec": {"paused": True}}),
                   headers=MP, timeout=2)
        http.patch(url(kube, f"{RO}/b"), data=json.dumps({"spec": {"paused": True}}),
                   headers=MP, timeout=2)
        ev = next(stream)  # "a" is filtered out
        assert ev["type"] == "MODIFIED" and ev["object"]["metadata"]["name"] == "b"


def test_watch_from_a_compacted_version_is_410(kube: FakeKube, http: requests.Session) -> None:
    made = create(kube, http, rollout())
    old_rv = made["metadata"]["resourceVersion"]
    http.patch(url(kube, f"{RO}/web"), data=json.dumps({"spec": {"paused": True}}),
               headers=MP, timeout=2)
    kube.compact()
    with requests.get(url(kube, RO), params={"watch": "1", "resourceVersion": old_rv},
                      stream=True, timeout=2) as w:
        assert w.status_code == 200  # the error comes in the stream, as from the watch cache
        got = list(events(w))  # and the stream ends after it
    assert len(got) == 1 and got[0]["type"] == "ERROR"
    st = got[0]["object"]
    assert st["kind"] == "Status" and st["code"] == 410 and st["reason"] == "Expired"
    assert st["message"] == f"too old resource version: {old_rv} ({kube.resource_version})"
    # From the compacted point itself the watch works.
    with requests.get(url(kube, RO), params={"watch": "1", "resourceVersion":
                                             kube.resource_version, "timeoutSeconds": "1"},
                      stream=True, timeout=2) as w:
        assert list(events(w)) == []


def test_bookmark_carries_only_the_resource_version(kube: FakeKube,
                                                    http: requests.Session) -> None:
    create(kube, http, rollout())
    rv = kube.resource_version
    with requests.get(url(kube, RO), params={"watch": "1", "resourceVersion": rv,
                                             "allowWatchBookmarks": "true"},
                      stream=True, timeout=2) as w:
        assert kube.wait_for_watches(1)
        # A change in another resource type moves the RV without an event here.
        create(kube, http, {"metadata": {"name": "lock"}, "spec": {}}, path=LEASES)
        kube.send_bookmark()
        ev = next(events(w))
    assert ev == {"type": "BOOKMARK", "object": {
        "kind": "Rollout", "apiVersion": "argoproj.io/v1alpha1",
        "metadata": {"resourceVersion": kube.resource_version}}}


def test_bookmarks_only_when_asked_for(kube: FakeKube, http: requests.Session) -> None:
    with requests.get(url(kube, RO), params={"watch": "1", "timeoutSeconds": "2"},
                      stream=True, timeout=2) as w:
        assert kube.wait_for_watches(1)
        kube.send_bookmark()
        assert list(events(w)) == []


def test_periodic_bookmarks_and_the_servers_own_watch_timeout(http: requests.Session) -> None:
    # Scaled: a bookmark every 1 "second" and a server-side limit of 3, i.e. 50 / 150 ms.
    with FakeKube(time_scale=0.05, bookmark_interval=1, default_watch_timeout=3) as kube, \
            requests.get(kube.url + RO, params={"watch": "1", "allowWatchBookmarks": "1"},
                         stream=True, timeout=2) as w:
        got = [e["type"] for e in events(w)]
    assert got and set(got) == {"BOOKMARK"}


def test_watch_timeout_ends_the_stream(kube: FakeKube, http: requests.Session) -> None:
    # time_scale=0.05: timeoutSeconds=2 lasts 0.1 s.
    with requests.get(url(kube, RO), params={"watch": "1", "timeoutSeconds": "2"},
                      stream=True, timeout=2) as w:
        assert list(events(w)) == []  # ends cleanly, with the closing chunk
    assert kube.wait_for_watches(0)
    bad = http.get(url(kube, RO), params={"watch": "1", "timeoutSeconds": "0.5"}, timeout=2)
    status_of(bad, 400, "BadRequest")


def test_dropped_and_ended_watches(kube: FakeKube, http: requests.Session) -> None:
    with requests.get(url(kube, RO), params={"watch": "1"}, stream=True, timeout=2) as w:
        assert kube.wait_for_watches(1)
        kube.drop_watches()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            list(events(w))
    with requests.get(url(kube, RO), params={"watch": "1"}, stream=True, timeout=2) as w:
        assert kube.wait_for_watches(1)
        kube.end_watches()
        assert list(events(w)) == []
    assert kube.wait_for_watches(0)


def test_watch_cut_after_a_number_of_events(kube: FakeKube, http: requests.Session) -> None:
    for name in ("a", "b", "c"):
        create(kube, http, rollout(name))
    kube.drop_after_events = 2
    got = []
    with (requests.get(url(kube, RO), params={"watch": "1", "resourceVersion": "0"},
                       stream=True, timeout=2) as w,
          pytest.raises(requests.exceptions.ChunkedEncodingError)):
        for ev in events(w):
            got.append(ev["object"]["metadata"]["name"])
    assert got == ["a", "b"]
    # The client resumes from the last resourceVersion it saw and misses nothing.
    kube.drop_after_events = None
    last = kube.get_object(ROLLOUTS, NS, "b")["metadata"]["resourceVersion"]
    with requests.get(url(kube, RO), params={"watch": "1", "resourceVersion": last,
                                             "timeoutSeconds": "2"}, stream=True,
                      timeout=2) as w:
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events(w)] == [
            ("ADDED", "c")]


# --- authn / authz ----------------------------------------------------------------------


def test_bearer_token_and_401(http: requests.Session) -> None:
    with FakeKube(token="s3cret") as kube:
        r = http.get(kube.url + RO, timeout=2)
        body = status_of(r, 401, "Unauthorized")
        assert body["message"] == "Unauthorized"
        ok = http.get(kube.url + RO, headers={"Authorization": "Bearer s3cret"}, timeout=2)
        assert ok.status_code == 200
        kube.unauthorized = True  # e.g. the token expired
        again = http.get(kube.url + RO, headers={"Authorization": "Bearer s3cret"}, timeout=2)
        status_of(again, 401, "Unauthorized")
        assert all("s3cret" not in json.dumps(r.headers) for r in kube.requests)


def test_403_names_verb_resource_group_and_namespace(kube: FakeKube,
                                                     http: requests.Session) -> None:
    create(kube, http, rollout())
    kube.user = "system:serviceaccount:shop:relconsole"
    kube.forbid("patch", "rollouts")
    r = http.patch(url(kube, f"{RO}/web"), data="{}", headers=MP, timeout=2)
    body = status_of(r, 403, "Forbidden")
    assert body["message"] == (
        'rollouts.argoproj.io "web" is forbidden: User "system:serviceaccount:shop:relconsole" '
        'cannot patch resource "rollouts" in API group "argoproj.io" in the namespace "shop"')
    assert body["details"] == {"name": "web", "group": "argoproj.io", "kind": "rollouts"}
    assert http.patch(url(kube, f"{RO}/web/status"), data="{}", headers=MP,
                      timeout=2).status_code == 200  # only the main resource was denied

    kube.forbid("patch", "rollouts/status")
    r = http.patch(url(kube, f"{RO}/web/status"), data="{}", headers=MP, timeout=2)
    assert 'cannot patch resource "rollouts/status" in API group' in r.json()["message"]

    kube.forbid("list", "rollouts")
    r = http.get(url(kube, "/apis/argoproj.io/v1alpha1/rollouts"), timeout=2)
    assert status_of(r, 403, "Forbidden")["message"] == (
        'rollouts.argoproj.io is forbidden: User "system:serviceaccount:shop:relconsole" '
        'cannot list resource "rollouts" in API group "argoproj.io" at the cluster scope')

    kube.forbid("create", "events")
    r = http.post(url(kube, f"/api/v1/namespaces/{NS}/events"), json={"metadata": {
        "name": "e"}}, timeout=2)
    assert status_of(r, 403, "Forbidden")["message"] == (
        'events is forbidden: User "system:serviceaccount:shop:relconsole" cannot create '
        'resource "events" in API group "" in the namespace "shop"')
    kube.allow_all()
    assert http.get(url(kube, f"{RO}/web"), timeout=2).status_code == 200


# --- events and leases -----------------------------------------------------------------


def test_core_and_events_k8s_io_events(kube: FakeKube, http: requests.Session) -> None:
    core = f"/api/v1/namespaces/{NS}/events"
    made = create(kube, http, {
        "apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "web."},
        "involvedObject": {"kind": "Rollout", "name": "web", "namespace": NS},
        "reason": "RelconsolePromote", "message": "promoted by alice", "type": "Normal"},
        path=core)
    assert made["kind"] == "Event" and made["apiVersion"] == "v1"
    assert made["metadata"]["name"].startswith("web.") and len(made["metadata"]["name"]) == 9
    listed = http.get(url(kube, core), timeout=2).json()
    assert listed["kind"] == "EventList" and listed["apiVersion"] == "v1"
    assert [i["reason"] for i in listed["items"]] == ["RelconsolePromote"]
    assert "kind" not in listed["items"][0]  # typed list items carry no TypeMeta

    new = f"/apis/events.k8s.io/v1/namespaces/{NS}/events"
    made = create(kube, http, {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "web.1"},
        "eventTime": "2026-08-20T10:00:00.000000Z", "reportingController": "relconsole",
        "reportingInstance": "bastion-1", "action": "Promote", "reason": "Promoted",
        "regarding": {"kind": "Rollout", "name": "web", "namespace": NS},
        "note": "promoted by alice", "type": "Normal"}, path=new)
    assert made["apiVersion"] == "events.k8s.io/v1" and made["note"] == "promoted by alice"
    assert http.get(url(kube, new), timeout=2).json()["items"][0]["action"] == "Promote"


def test_lease_create_update_and_conflict(kube: FakeKube, http: requests.Session) -> None:
    now = "2026-08-20T10:00:00.000000Z"
    spec = {"holderIdentity": "console-a", "leaseDurationSeconds": 15,
            "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
    made = create(kube, http, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                               "metadata": {"name": "relconsole-web"}, "spec": spec},
                  path=LEASES)
    assert made["kind"] == "Lease" and made["spec"] == spec
    lost = status_of(http.post(url(kube, LEASES), json=made, timeout=2), 409, "AlreadyExists")
    assert lost["message"] == 'leases.coordination.k8s.io "relconsole-web" already exists'

    lease = url(kube, f"{LEASES}/relconsole-web")
    seen_a = http.get(lease, timeout=2).json()
    seen_b = http.get(lease, timeout=2).json()
    seen_a["spec"]["renewTime"] = "2026-08-20T10:00:02.000000Z"
    assert http.put(lease, json=seen_a, timeout=2).status_code == 200
    seen_b["spec"].update(holderIdentity="console-b", leaseTransitions=1)
    body = status_of(http.put(lease, json=seen_b, timeout=2), 409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "relconsole-web": the '
        "object has been modified; please apply your changes to the latest version and try "
        "again")
    assert body["details"] == {"name": "relconsole-web", "group": "coordination.k8s.io",
                               "kind": "leases"}
    assert http.get(lease, timeout=2).json()["spec"]["holderIdentity"] == "console-a"

    # Built-in types allow strategic merge patch (unlike CRDs).
    smp = http.patch(lease, data=json.dumps({"spec": {"holderIdentity": ""}}),
                     headers={"Content-Type": "application/strategic-merge-patch+json"},
                     timeout=2)
    assert smp.status_code == 200 and smp.json()["spec"]["holderIdentity"] == ""
    listed = http.get(url(kube, LEASES), timeout=2).json()
    assert listed["kind"] == "LeaseList" and "kind" not in listed["items"][0]
    missing = status_of(http.get(url(kube, f"{LEASES}/none"), timeout=2), 404, "NotFound")
    assert missing["message"] == 'leases.coordination.k8s.io "none" not found'

    current = http.get(lease, timeout=2).json()
    gone = http.delete(lease, json={"preconditions": {"resourceVersion": "1"}}, timeout=2)
    status_of(gone, 409, "Conflict")
    gone = http.delete(lease, json={"preconditions": {
        "resourceVersion": current["metadata"]["resourceVersion"]}}, timeout=2)
    assert gone.status_code == 200 and gone.json()["status"] == "Success"


# --- request log ------------------------------------------------------------------------


def test_request_log_records_what_was_sent(kube: FakeKube, http: requests.Session) -> None:
    create(kube, http, rollout())
    kube.clear_log()
    http.patch(url(kube, f"{RO}/web/status"), data='{"status":{"abort":true}}',
               headers=MP, timeout=2)
    http.get(url(kube, RO), params={"labelSelector": "app=web", "limit": "500"}, timeout=2)
    first, second = kube.requests
    assert (first.method, first.path, first.content_type, first.body, first.status) == (
        "PATCH", f"{RO}/web/status", "application/merge-patch+json",
        {"status": {"abort": True}}, 200)
    assert first.raw_body == b'{"status":{"abort":true}}' and first.query == {}
    assert (second.method, second.path, second.query, second.body) == (
        "GET", RO, {"labelSelector": "app=web", "limit": "500"}, None)
    assert kube.requests_to("PATCH") == [first]


# --- the controller ----------------------------------------------------------------------


def get_status(kube: FakeKube, name: str = "web") -> dict:
    return kube.get_object(ROLLOUTS, NS, name)["status"]


def set_image(kube: FakeKube, http: requests.Session, image: str) -> None:
    ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]
    r = http.patch(url(kube, f"{RO}/web"), data=json.dumps(ops), headers=JP, timeout=2)
    assert r.status_code == 200, r.text


def test_controller_walks_setweight_pause_promote_to_full(kube: FakeKube,
                                                          http: requests.Session) -> None:
    create(kube, http, rollout())
    kube.step_controller()
    st = get_status(kube)
    assert st["phase"] == "Healthy" and st["stableRS"] == st["currentPodHash"]  # first deploy
    assert st["currentStepIndex"] == 3 and st["observedGeneration"] == "1"
    stable = st["stableRS"]

    set_image(kube, http, "web:2")
    rv = kube.resource_version
    with requests.get(url(kube, RO), params={"watch": "1", "resourceVersion": rv},
                      stream=True, timeout=2) as w:
        assert kube.step_controller() == [f"{NS}/web"]
        st = get_status(kube)
        assert st["currentPodHash"] != stable and st["stableRS"] == stable
        assert (st["currentStepIndex"], st["phase"], st["observedGeneration"]) == (
            0, "Progressing", "2")
        ev = next(events(w))
        assert ev["type"] == "MODIFIED" and ev["object"]["status"]["currentStepIndex"] == 0

    kube.step_controller()  # setWeight: 20
    st = get_status(kube)
    assert st["currentStepIndex"] == 1
    assert st["canary"]["weights"]["canary"]["weight"] == 20
    assert st["canary"]["weights"]["stable"] == {"weight": 80, "podTemplateHash": stable,
                                                 "serviceName": "web-stable"}
    assert (st["updatedReplicas"], st["replicas"]) == (1, 6)
    assert st["phase"] == "Progressing" and st["message"] == "more replicas need to be updated"

    kube.step_controller()  # pause: {}
    st = get_status(kube)
    assert st["currentStepIndex"] == 1 and st["controllerPause"] is True
    assert [p["reason"] for p in st["pauseConditions"]] == ["CanaryPauseStep"]
    assert (st["phase"], st["message"]) == ("Paused", "CanaryPauseStep")
    assert kube.step_controller() == []  # an indefinite pause stays

    # `kubectl argo rollouts promote`: GET, then the status patch.
    r = http.patch(url(kube, f"{RO}/web/status"),
                   data=json.dumps({"status": {"pauseConditions": None}}), headers=MP, timeout=2)
    assert r.status_code == 200
    kube.step_controller()
    st = get_status(kube)
    assert st["currentStepIndex"] == 2 and st["controllerPause"] is False
    assert "pauseConditions" not in st

    kube.step_controller()  # setWeight: 60
    assert get_status(kube)["canary"]["weights"]["canary"]["weight"] == 60
    kube.step_controller()  # all steps done: the canary becomes stable
    st = get_status(kube)
    assert st["currentStepIndex"] == 3 and st["stableRS"] == st["currentPodHash"] != stable
    assert (st["phase"], st["message"]) == ("Healthy", "")
    assert st["canary"]["weights"]["stable"]["weight"] == 100
    assert st["updatedReplicas"] == st["availableReplicas"] == 5
    assert kube.step_controller() == []  # settled

    reasons = [e["reason"] for e in kube.objects(CORE_EVENTS, NS)
               if e["involvedObject"]["name"] == "web"]
    assert reasons.count("RolloutStepCompleted") == 3 and "RolloutCompleted" in reasons
    messages = {e["message"] for e in kube.objects(CORE_EVENTS, NS)}
    assert "Rollout step 1/3 completed (setWeight: 20)" in messages


def test_controller_abort_retry_and_manual_pause(kube: FakeKube, http: requests.Session) -> None:
    create(kube, http, rollout())
    kube.step_controller()
    set_image(kube, http, "web:2")
    kube.step_controller()
    kube.step_controller()  # at 20 %
    status = url(kube, f"{RO}/web/status")
    http.patch(status, data=json.dumps({"status": {"abort": True}}), headers=MP, timeout=2)
    kube.step_controller()
    st = get_status(kube)
    assert st["abort"] is True and st["abortedAt"]
    assert st["canary"]["weights"]["canary"]["weight"] == 0 and st["currentStepIndex"] == 0
    assert st["phase"] == "Degraded"
    assert st["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    assert kube.step_controller() == []  # stays aborted

    http.patch(status, data=json.dumps({"status": {"abort": False}}), headers=MP, timeout=2)
    kube.step_controller()  # retried: back at step 1 (setWeight 20)
    st = get_status(kube)
    assert "abortedAt" not in st and st["canary"]["weights"]["canary"]["weight"] == 20

    http.patch(url(kube, f"{RO}/web"), data=json.dumps({"spec": {"paused": True}}),
               headers=MP, timeout=2)
    kube.step_controller()
    st = get_status(kube)
    assert (st["phase"], st["message"], st["observedGeneration"]) == (
        "Paused", "manually paused", "3")
    assert kube.step_controller() == []  # a manual pause holds


def test_controller_timed_pause_and_promote_full(http: requests.Session) -> None:
    moment = [datetime(2026, 8, 20, 10, 0, tzinfo=UTC)]
    with FakeKube(clock=lambda: moment[0]) as kube:
        r = http.post(kube.url + RO, json=rollout(steps=[{"setWeight": 10},
                                                         {"pause": {"duration": "30s"}},
                                                         {"setWeight": 50}, {"pause": {}}]),
                      timeout=2)
        assert r.status_code == 201
        kube.step_controller()
        ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                "value": "web:2"}]
        http.patch(kube.url + f"{RO}/web", data=json.dumps(ops), headers=JP, timeout=2)
        for _ in range(3):
            kube.step_controller()
        st = get_status(kube)
        assert st["pauseConditions"][0]["startTime"] == "2026-08-20T10:00:00Z"
        moment[0] += timedelta(seconds=29)
        assert kube.step_controller() == []
        moment[0] += timedelta(seconds=1)
        kube.step_controller()
        assert get_status(kube)["currentStepIndex"] == 2

        http.patch(kube.url + f"{RO}/web/status",
                   data=json.dumps({"status": {"promoteFull": True}}), headers=MP, timeout=2)
        kube.step_controller()
        st = get_status(kube)
        assert st["phase"] == "Healthy" and st["stableRS"] == st["currentPodHash"]
        assert st["promoteFull"] is False


def test_background_controller_runs_a_release(http: requests.Session) -> None:
    with FakeKube() as kube:
        r = http.post(kube.url + RO, json=rollout(steps=[{"setWeight": 50}]), timeout=2)
        assert r.status_code == 201
        listed = http.get(kube.url + RO, timeout=2).json()
        kube.start_controller(interval=0.005)
        with requests.get(kube.url + RO, params={"watch": "1", "resourceVersion":
                                                 listed["metadata"]["resourceVersion"]},
                          stream=True, timeout=2) as w:
            for ev in events(w):
                if ev["object"].get("status", {}).get("phase") == "Healthy":
                    break
        ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                "value": "web:2"}]
        rv = http.patch(kube.url + f"{RO}/web", data=json.dumps(ops), headers=JP,
                        timeout=2).json()["metadata"]["resourceVersion"]
        with requests.get(kube.url + RO, params={"watch": "1", "resourceVersion": rv},
                          stream=True, timeout=2) as w:
            for ev in events(w):
                st = ev["object"]["status"]
                if st.get("phase") == "Healthy" and st["observedGeneration"] == "2":
                    break
        assert st["stableRS"] == st["currentPodHash"]

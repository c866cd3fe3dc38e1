"""An async endpoint runs at most instances x MaxConcurrentInvocationsPerInstance inferences in its model
container at once, as on AWS; reading inputs and writing answers hold no container slot."""

from __future__ import annotations

import threading

from storyflow_local.sagemaker_queue import EndpointQueue, endpoint_slots
from tests.unit.local.support import wait_for


def test_slots_are_instances_times_invocations_per_instance() -> None:
    one_each = {"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1}}
    assert endpoint_slots(one_each, [{"InitialInstanceCount": 1}]) == 1
    assert endpoint_slots(one_each, [{"InitialInstanceCount": 3}]) == 3
    assert endpoint_slots({"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2}}, [{}]) == 2
    assert endpoint_slots({}, [{"InitialInstanceCount": 2}]) == 8  # the per-instance default: 4


def test_never_more_requests_than_slots_reach_the_container() -> None:
    # Given an endpoint with two slots and five requests queued
    queue = EndpointQueue("test", slots=2)
    release = threading.Event()
    lock = threading.Lock()
    state = {"reading": 0, "inside": 0, "most_inside": 0, "done": 0}

    def inference() -> None:
        with lock:
            state["reading"] += 1  # reading the input: outside the container
        with queue.slot():
            with lock:
                state["inside"] += 1
                state["most_inside"] = max(state["most_inside"], state["inside"])
            release.wait(30)
            with lock:
                state["inside"] -= 1
        with lock:
            state["done"] += 1

    try:
        for _ in range(5):
            queue.submit(inference)
        # When two are in the container and two more have read their input and wait for a slot
        wait_for(lambda: state["reading"] == 4 and state["inside"] == 2)
        # Then only the two are inside
        assert state["most_inside"] == 2
        release.set()
        wait_for(lambda: state["done"] == 5)
        assert state["most_inside"] == 2
    finally:
        release.set()
        queue.shutdown()

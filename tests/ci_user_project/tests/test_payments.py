"""Hooklab sends signed "Payment Received" webhooks: check what was delivered."""

import shop


def test_payment_received_is_delivered_signed(hooklab):
    bin = hooklab.create_bin()
    webhook = hooklab.add_webhook(bin, event="payment_received", name="Payments")

    fired = hooklab.fire("payment_received", {"payment_id": 99, "payment_total_raw": 4200})
    assert len(fired["deliveries"]) == 1

    request = bin.wait_for(json={"payment_id": 99})
    assert request.header("X-Hooklab-Event") == "payment_received"
    assert request.verify(webhook["secret"])
    # The shop's own verification code accepts a real Standard Webhooks delivery.
    assert shop.signature_is_valid(webhook["secret"], dict(request.headers), request.body)

    [delivery] = hooklab.wait_for_deliveries(webhook)
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"][0]["status_code"] == 200


def test_a_test_event_uses_the_catalog_example(hooklab):
    bin = hooklab.create_bin()
    webhook = hooklab.add_webhook(bin.url, event="payment_received")
    assert hooklab.test_webhook(webhook)["ok"]
    example = next(e for e in hooklab.events() if e["slug"] == "payment_received")
    request = bin.wait_for(method="POST")
    assert set(request.json) == set(example["payload"])


def test_the_fixture_cleans_up_between_tests(hooklab):
    # Webhooks of the earlier tests were deleted when they ended; their bins are deleted in
    # the background, and a few bins are kept ready: wait_for_cleanup() leaves none of them.
    assert hooklab.client.webhooks() == []
    hooklab.wait_for_cleanup()
    assert hooklab.client.bins() == []
    made = hooklab.create_bin()
    assert [b["id"] for b in hooklab.client.bins()] == [made.id]
    assert hooklab.url.startswith("http://127.0.0.1:")

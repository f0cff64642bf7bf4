"""The shop sends an "order paid" webhook: catch it in a Hooklab bin."""

import pytest
import shop


def test_paying_an_order_sends_a_webhook(hooklab):
    bin = hooklab.create_bin(name="orders")

    shop.notify_order_paid(bin.url, order_id=7, amount_cents=4200)

    request = bin.wait_for(method="POST", path="/orders", json={"order_id": 7, "status": "paid"})
    assert request.json["amount"] == 4200
    assert request.header("x-shop-event") == "order.paid"
    assert request.header("Content-Type") == "application/json"


def test_each_notification_is_caught_once(hooklab):
    bin = hooklab.create_bin()
    for order_id in (1, 2):
        shop.notify_order_paid(bin.url, order_id=order_id, amount_cents=100)

    first = bin.wait_for(method="POST")
    second = bin.wait_for(method="POST")
    assert {first.json["order_id"], second.json["order_id"]} == {1, 2}
    assert [r.json["order_id"] for r in bin.requests()] == [1, 2]

    bin.clear()
    assert bin.requests() == []


def test_a_failing_receiver_is_reported(hooklab):
    bin = hooklab.create_bin(status=503, body="down for maintenance")
    with pytest.raises(shop.NotifyError, match="503"):
        shop.notify_order_paid(bin.url, order_id=9, amount_cents=1)
    assert bin.wait_for(predicate=lambda r: r.json["order_id"] == 9).method == "POST"

"""Meant to fail: the message a CI user reads when the expected request never comes."""

import shop


def test_waiting_for_a_request_that_never_comes(hooklab):
    bin = hooklab.create_bin()
    shop.notify_order_paid(bin.url, order_id=1, amount_cents=100)
    bin.wait_for(method="POST", json={"order_id": 2}, timeout=0.5)

"""--max-requests permits: exact totals, abandoned calls given back, leases from the master that add up."""

import gevent

from grpc_user.locust.run.budget import BudgetPool, RequestBudget


def test_permits_run_out_and_spent_fires_when_the_last_call_finishes():
    spent = []
    budget = RequestBudget()
    budget.limit(2, lambda: spent.append(True))
    assert budget.take() and budget.take() and not budget.take()
    budget.release()
    assert not spent, "one call still in flight"
    budget.release()
    assert spent == [True]


def test_an_abandoned_call_gives_its_permit_back_so_the_total_stays_exact():
    spent = []
    budget = RequestBudget()
    budget.limit(2, lambda: spent.append(True))
    assert budget.take() and budget.take()
    budget.refund()  # interrupted before it could be recorded: another call may be made
    budget.release()
    assert not spent and budget.take()
    budget.release()
    assert spent == [True]


def test_a_worker_asks_for_a_lease_before_it_runs_dry_and_stops_when_the_master_has_none_left():
    asked, spent = [], []
    budget = RequestBudget()
    budget.lease(ask=asked.append, lease_size=lambda: 20, on_spent=lambda: spent.append(True))
    budget.grant(20)
    assert all(budget.take() for _ in range(11))
    assert asked == [20], "fewer than half a lease left: the next one is asked for ahead"
    budget.grant(0)  # the total is handed out
    assert all(budget.take() for _ in range(9)) and not budget.take()
    for _ in range(20):
        budget.release()
    assert spent == [True]


def test_the_pool_leases_exactly_its_total_and_waits_for_every_holder():
    pool = BudgetPool(25)
    assert pool.grant("a", 10) == 10
    assert pool.grant("b", 10) == 10
    assert pool.grant("a", 10) == 5
    assert pool.grant("b", 10) == 0
    assert not pool.spent("b"), "a still holds permits"
    assert pool.spent("a")


def test_a_worker_without_users_never_holds_part_of_the_total():
    pool = BudgetPool(3)
    assert pool.grant("busy", 10) == 3
    assert pool.spent("busy"), "the idle worker never asked, so nothing waits for it"


def test_a_closed_budget_permits_no_call_whatever_test_starts_after_and_wakes_a_user_waiting_for_a_lease():
    """A process shutting down closes its budget: a user waiting for the master's lease is refused at once, and the
    limits a new test sets (a master's rebalancing onto a stopping worker) open nothing."""
    budget = RequestBudget()
    budget.lease(ask=lambda wanted: None, lease_size=lambda: 10, on_spent=lambda: None)
    waiting = gevent.spawn(budget.take)
    gevent.sleep(0)
    budget.close()
    assert waiting.get(timeout=1) is False
    budget.limit(None, lambda: None)
    assert budget.take() is False
    budget.limit(5, lambda: None)
    assert budget.take() is False

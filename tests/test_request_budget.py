"""--max-requests permits: exact totals, abandoned calls given back, shares that add up."""

from grpc_user.request_budget import RequestBudget, split_total


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
    budget.refund()  # a user stopped mid-call: not recorded, so another call may be made
    budget.release()
    assert not spent and budget.take()
    budget.release()
    assert spent == [True]


def test_shares_add_up_to_the_total():
    assert split_total(1001, ["b", "a", "c"]) == {"a": 334, "b": 334, "c": 333}
    assert split_total(5, []) == {}

"""``--arrival-rate``: rate schedules and the clock that starts calls on them."""

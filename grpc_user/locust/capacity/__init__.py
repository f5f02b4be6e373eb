"""``--capacity-search``: the knee search and the steps that find the highest sustained rate."""

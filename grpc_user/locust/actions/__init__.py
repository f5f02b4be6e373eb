"""``--action AT:COMMAND``: shell commands run at set times of a test, and the phases they open."""

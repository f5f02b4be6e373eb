"""pandas turns Locust CSV stats and the suite's sidecar files into Markdown/HTML/PNG reports with CI gates.

``python -m reports RUN [--out DIR] [--baseline RUN2] [--json] [gates]``; see reports.cli.
"""

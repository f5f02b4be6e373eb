"""The Locust plugin, and its composition root: importing ``grpc_user.locust`` (which any import of one of its
modules does first) registers the suite's options and every listener on Locust's events, as ``locust_plugins``
does; no feature module imports listeners for their side effect. Below it: the test's lifecycle, then the features
(user, workloads, transport, counts, audit, freshness, open model, actions, capacity, web UI), then the
foundations (settings, run state). Importing it loads Locust (and gevent's monkey-patching); the client in
``grpc_user`` does not."""

from locust import events

from grpc_user.locust.lifecycle import listeners

listeners.register(events)

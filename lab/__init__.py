"""The opsflow lab: a reference ops platform and a local stack (OpenBao, Prometheus,
Alertmanager) on 127.0.0.1 for the demo and the tests. Product code never imports it."""

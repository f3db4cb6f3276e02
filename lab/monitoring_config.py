"""The configuration files the lab writes for its Prometheus (scrape config, alert rules) and
its Alertmanager (routes to the alert receiver)."""

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: lab-hosts
    honor_labels: true
    scheme: https
    tls_config:
      ca_file: {ca}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
rule_files: ["{rules}"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{alertmanager}"]
"""

# The restart runbook's default threshold (4) held for 5 s: an overloaded lab host pages.
ALERT_RULES = """\
groups:
  - name: opsflow-lab
    rules:
      - alert: HostOverloaded
        expr: node_load1 > 4
        for: 5s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.hostname }}: load {{ $value }} over 4"
"""

# Alerts go to the receiver (`opsflow alerts serve`, running with `--prefect postgres`); alerts
# that start within a second of each other are one notification, so one run.
ALERTMANAGER_CONFIG = """\
route:
  receiver: opsflow
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: opsflow
    webhook_configs:
      - url: http://127.0.0.1:{receiver}/alerts
        send_resolved: true
        http_config:
          authorization:
            credentials_file: {token_file}
"""

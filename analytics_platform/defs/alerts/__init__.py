"""Alerts that reach a person, and the weekly report (docs/ALERTS.md).

- ``channels.py``: where a message goes (a generic JSON webhook, Slack through dagster-slack's
  client or an incoming webhook, e-mail over SMTP, which is also how Amazon SES is reached) and
  how each channel renders it;
- ``resources.py``: the ``alerts`` resource, bound to ``ANALYTICS_*`` variables or a YAML file;
- ``incidents.py`` and ``sensors.py``: the ``alerts_sensor``, which evaluates the events checks
  that already define "anomalous" and "stale" (``defs/events/checks.py``) and the latest run of
  every job, and sends one message when an incident opens and one when it ends;
- ``report.py``: the weekly report (numbers from the marts, a chart, its job and schedule).
"""

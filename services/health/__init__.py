"""Daily health check-ins: thresholds, assessment, storage, reminders and charts.

Kept light: importing the package does not load matplotlib (services.health.charts does).
"""

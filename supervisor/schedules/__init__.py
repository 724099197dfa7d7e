"""Schedules of our own locations, ticked by `up`: cron times, the ticker, their records."""

"""A minimal Django + DRF + Celery service: the baseline `make bench` divides our figures by.

Stock settings, one model, one endpoint, one task. It imports nothing of the project, so the
baseline carries none of the project's cost (tests/bench/test_bare_is_bare.py keeps it so).
"""

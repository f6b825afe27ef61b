"""Intake: every channel (the API, the ``/submit`` page, the e-mail inbox, imported posts) turns a
photo into a submission through :func:`serve.intake.intake.take_in`."""

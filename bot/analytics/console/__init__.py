"""Every figure the console shows, computed here over the event log and the store (reads only).

`pages.PAGES` lists the pages; `timeline.learner_timeline` and `report.cohort_report` are the
learner's timeline and a cohort's printable report. Each respects the reader's `Scope` and the
`Filters`, and leaves the public sandbox's learners out.
"""

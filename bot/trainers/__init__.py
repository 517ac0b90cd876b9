"""Trainer and admin tools: users and roles, cohorts, CSV enrolment, lesson pushes."""

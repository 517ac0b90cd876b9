"""The console: signed-in trainers and admins read the figures and act on their cohorts."""

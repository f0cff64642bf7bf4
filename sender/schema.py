"""The manager's tables, created and changed only by these migrations."""

from sqlite_utils.migrations import Migrations

migrations = Migrations("hooklab.sender")

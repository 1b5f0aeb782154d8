"""One exception type for every mistake a user can make, so the CLI can print it as one line."""


class UserError(Exception):
    """Bad input from the user (names, numbers, specs, folders): shown as one line, exit code 2."""

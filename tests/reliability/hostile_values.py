"""A corpus of hostile values: text a user (or a producer of events) might hand the workbench
that would break, or break out of, a SQL statement, a file path, a notebook or a web page if it
were ever spliced into text instead of bound as a value.

``HOSTILE`` maps a short label (used in test ids and messages) to the value. ``NOTEBOOK_SUBSET``
names the few labels fed to real papermill runs (each run costs a kernel start); the in-process
entry points take the whole corpus. The table names in the payloads are the ones the injection
tests load (``wb_assignments``, ``wb_purchases``), so a payload that ever ran would be seen.
"""

from __future__ import annotations

LONG_LENGTH = 100_000

HOSTILE: dict[str, str] = {
    # quotes and escapes
    "single quote": "'",
    "double quote": '"',
    "doubled single quotes": "''",
    "doubled double quotes": '""',
    "quote break OR": "x' OR '1'='1",
    "identifier break OR": 'x" OR "1"="1',
    "backslash": "\\",
    "backslash quote": "\\'",
    "trailing backslash": "control\\",
    "backquote identifier": "`variation_id`",
    "E-string escape": "E'\\x27'",
    # comments
    "line comment": "-- comment",
    "value then comment": "control'--",
    "block comment": "/* x */",
    "unterminated block comment": "/*",
    "comment closer then statement": "*/ SELECT 1 /*",
    # stacked statements
    "semicolon": ";",
    "drop table": "'; DROP TABLE wb_assignments; --",
    "drop table double quoted": '"; DROP TABLE wb_assignments; --',
    "delete": "1; DELETE FROM wb_purchases",
    "insert": "'); INSERT INTO wb_purchases VALUES ('x', now(), 1); --",
    "copy to program": "'; COPY (SELECT 1) TO PROGRAM 'touch /tmp/wb_injection_pwned'; --",
    "copy to file": "x'); COPY wb_assignments TO '/tmp/wb_injection_leak.csv'; --",
    "update": "'; UPDATE wb_assignments SET variation_id = 'x'; --",
    "truncate": "'; TRUNCATE wb_purchases; --",
    "grant superuser": "'; ALTER ROLE workbench NOSUPERUSER; --",
    "sleep": "'; SELECT pg_sleep(30); --",
    "duckdb attach": "'; ATTACH '/tmp/wb_injection_evil.duckdb' AS evil; --",
    "duckdb install": "'; INSTALL httpfs; LOAD httpfs; --",
    "newline statement": "x'\n;DROP TABLE wb_assignments;\n--",
    # UNION and tautologies
    "union select": "' UNION SELECT usename, passwd FROM pg_shadow --",
    "union all nulls": "x' UNION ALL SELECT NULL, NULL, NULL --",
    "or true": "' OR 1=1 --",
    "closing parenthesis": "x') OR ('1'='1",
    # control characters
    "NUL byte": "a\x00b",
    "newline": "line1\nline2",
    "carriage return newline": "a\r\nb",
    "tab": "a\tb",
    "ANSI escape": "\x1b[31mred\x1b[0m",
    "backspaces": "abc\x08\x08\x08xyz",
    # Unicode
    "right-to-left override": "\u202eevil\u202c",
    "right-to-left mark Hebrew": "\u200fשלום",
    "zero-width space": "con\u200btrol",
    "byte order mark": "\ufeffcontrol",
    "Cyrillic homoglyph": "\u0441ontrol",
    "fullwidth quotes": "\uff07 OR \uff071\uff07=\uff071",
    "typographic quote drop": "\u2019; DROP TABLE wb_assignments; --",
    "emoji": "\U0001f9ea\U0001f525",
    "emoji ZWJ family": "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "combining accent": "e\u0301",
    "CJK": "\u5b9e\u9a8c\u7ec4",
    "math bold letters": "\U0001d41c\U0001d428\U0001d427\U0001d42d\U0001d42b\U0001d428\U0001d425",
    # very long
    "100k letters": "A" * LONG_LENGTH,
    "100k quotes and semicolons": "';" * (LONG_LENGTH // 2),
    # SQL keywords as plain words
    "keyword SELECT": "SELECT",
    "keyword NULL": "NULL",
    "keyword DROP": "DROP",
    "keyword true": "true",
    "query text": "SELECT * FROM pg_user",
    # dollar quoting and placeholders
    "dollar quotes": "$$",
    "tagged dollar quotes": "$tag$; DROP TABLE wb_assignments; $tag$",
    "positional placeholder": "$1",
    "bind-looking name": ":name",
    "bind-looking experiment key": ":experiment_key",
    "cast operator": "x::int",
    "question mark": "?",
    # format markers and braces
    "percent s": "%s",
    "percent named": "%(x)s",
    "percent": "100%",
    "LIKE wildcards": "%_%",
    "braces": "{}",
    "named braces": "{schema}",
    "format attribute": "{0.__class__}",
    "Jinja expression": "{{ 7 * 7 }}",
    # paths
    "path traversal": "../../etc/passwd",
    "Windows path traversal": "..\\..\\windows\\win.ini",
    "absolute path": "/etc/passwd",
    # markup
    "script tag": "<script>alert('wb')</script>",
    "image onerror": "<img src=x onerror=alert(1)>",
    # look-alikes of other types
    "empty": "",
    "space": " ",
    "only newline": "\n",
    "overflowing number": "1e309",
    "negative number": "-1",
    "YAML tag": "!!python/object/apply:os.system ['id']",
    "JSON object": '{"a": 1}',
}

# fed to real papermill runs of the report notebooks (the whole corpus runs in process)
NOTEBOOK_SUBSET = (
    "drop table",
    "newline statement",
    "NUL byte",
    "right-to-left override",
    "100k quotes and semicolons",
    "tagged dollar quotes",
    "percent named",
    "path traversal",
    "script tag",
)


def hostile_items() -> list[tuple[str, str]]:
    """(label, value) pairs in a fixed order."""
    return list(HOSTILE.items())


def preview(value: str, width: int = 40) -> str:
    """A short, printable form of ``value`` for assertion messages."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}… ({len(value):,} characters)"

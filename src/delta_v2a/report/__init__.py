"""What the study reports: its tables (``rows``), the report's HTML (``html``) and the
end-of-run summary (``summary``), as pure functions of the phases' own outputs; the
``tables`` and ``summary`` jobs only read, call these and write."""

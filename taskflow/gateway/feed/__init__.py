"""Live feeds over Server-Sent Events: one Redis reader per gateway process fanning out
to every open feed (``hub``), resume from ``Last-Event-ID`` without gap or repeat
(``position``, ``history``), what each caller may see (``selection``), one-use tickets for
browsers (``tickets``) and the per-user cap on open feeds (``limits``)."""

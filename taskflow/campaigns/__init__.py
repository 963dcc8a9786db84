"""Email campaigns (issue 14): intake, templates, sending, the per-recipient ledger.

The shared contract between the parts (gateway routes, the ``send_email`` task, the
coordinator, the projection):

- **Events** are the campaign aggregate's (``taskflow.events.campaign``); a recipient's
  fate is a campaign event appended in the same Lua step as its ledger change.
- **Redis, in the campaign's partition** (``Keyspace.campaign*``):
  - ``campaign(id)`` hash: ``status`` (draft | scheduled | running | paused | completed),
    ``owner``, ``rate_limit_per_minute``, ``template`` (JSON: subject, body, text,
    variables), counters ``pending``, ``sent``, ``failed``, ``skipped``, ``runs``, and
    ``deferred_until`` (the last rate slot told to a waiting send task, ``begin_send.lua``);
  - ``campaign_ledger(id)`` hash: recipient id -> ``pending`` | ``sending:<task id>`` |
    ``sent`` | ``failed`` | ``bounced`` | ``skipped`` | ``unsubscribed``;
  - ``campaign_rate(id)``: the GCRA state of the campaign's send rate.
- **Suppression**: ``Keyspace.suppressed(owner)``, a set of normalised addresses.
- **The send task**: ``send_email`` (``taskflow.tasks.builtin``) with kwargs
  ``campaign_id``, ``recipient_id``, ``email``, ``name``, ``fields``; its task events
  carry ``campaign_id``. It reads the templates from the campaign hash.
- **Recipient ids** are ``ids.recipient_id(campaign_id, email)``: uuid5 of the campaign
  and the normalised address.
"""

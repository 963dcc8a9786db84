"""A task submission from any producer (the gateway, the in-process producer, the REST
client through the gateway): its body, its checks and the event it becomes. One
validation, so a submission the gateway refuses is refused the same way in-process."""

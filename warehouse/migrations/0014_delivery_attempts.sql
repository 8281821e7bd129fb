-- 0014 Every attempt to deliver a clinical alert's notification, and what the channel answered
-- (monitoring/notify.py): a notification is sent only when a webhook answered its POST itself
-- with a 2xx (a redirect is a failed attempt, never followed) or the mail server took the
-- message. Who reads alerts reads how they were delivered; nothing here says who the patient is.
create table if not exists monitoring.delivery_attempts (
    notification_key uuid not null references monitoring.notifications,
    attempt integer not null,
    channel text not null check (channel in ('webhook', 'email', 'none')),
    attempted_at timestamptz not null,
    answered_at timestamptz not null default now(),
    -- the webhook's HTTP status; null when there was no answer (a timeout, a refused connection)
    -- or the channel is email
    http_status integer,
    outcome text not null check (outcome in ('delivered', 'refused', 'failed')),
    -- why not delivered: the answer's status line or the error's type, never the message
    detail text,
    primary key (notification_key, attempt)
);

grant select, insert on monitoring.delivery_attempts to monitor;
grant select on monitoring.delivery_attempts to clinical_ops, steward;

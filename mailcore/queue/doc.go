// Package queue is the outbound delivery queue (the `delivery` module): it
// keeps mail for remote recipients in SQL rows and the blob store until each
// recipient is delivered or bounced.
//
// What it promises:
//   - Enqueue is durable on return: the body is Put (fsynced) into the mail
//     store's BlobStore and, in one transaction, a queue_messages row, one
//     queue_recipients row per recipient and one reference on the body's
//     blobs row are committed. A purge of the same bytes in flight is
//     waited out and the body stored again, exactly as mailcore's Deliver
//     does, so the queue never points at a deleted body. blobs.refs counts
//     message rows plus queue_messages rows; mailcore's fsck counts both.
//   - A finished message (every recipient delivered or bounced) loses its
//     rows and its body reference in one transaction; a body left with no
//     reference is marked dead for the purge.
//   - Several processes may Run against one database and none sends a
//     recipient twice: due rows are claimed (FOR UPDATE SKIP LOCKED on
//     PostgreSQL; SQLite has one writer) with an expiry, so the rows of a
//     worker that crashed are taken again after Config.ClaimFor. Only a
//     crash between a remote 250 and the commit of its outcome resends.
//   - Routing (RFC 5321 5.1): MX hosts in preference order (equal
//     preferences shuffled), the domain's own A/AAAA when it has no MX,
//     permanent failure for a domain without either or with a null MX
//     (RFC 7505). With Config.Smarthost set, every remote message goes to
//     the smarthost instead (STARTTLS or implicit TLS with a verified
//     certificate, optional AUTH PLAIN). Recipients in local domains are
//     delivered into the store.
//   - TLS per domain: opportunistic by default (RFC 7435: STARTTLS when
//     offered, certificate not checked, clear text if the handshake fails);
//     required (certificate verified for the MX name; no STARTTLS is a
//     temporary failure, so the message waits instead of travelling in
//     clear).
//   - Retries: temporary failures (4xx, connection errors, timeouts, DNS
//     trouble) wait Config.Backoff (5m, 15m, 30m, 1h, 2h, 4h, then every
//     4h) until the message is Config.RetryFor old (5 days), then bounce;
//     permanent failures (5xx) bounce at once.
//   - Bounces are RFC 3464 delivery status notifications (multipart/report,
//     a Chinese and English explanation, message/delivery-status and the
//     original header as text/rfc822-headers), sent with the null sender:
//     into the sender's INBOX when the sender is local, through the queue
//     otherwise. A message from the null sender is never bounced, so a
//     bounce is never bounced. A bounce is sent at least once.
//   - Every outbound message whose From domain is local (or this host's
//     name) is DKIM-signed (RFC 6376, relaxed/relaxed, rsa-sha256) with a
//     per-domain RSA 2048 key generated on first use into
//     Config.DKIMKeyDir; DKIMRecord gives the TXT record to publish.
//   - List, Retry and Delete are the admin API behind `govhub queue`.
//
// Not here: accepting mail (the SMTP server calls Enqueue), the CLI, the
// HTTP admin handler, and DSN extension parameters (RFC 3461 NOTIFY/RET are
// not honoured: every failure is reported, with headers only).
package queue

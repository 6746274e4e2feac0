// Package webmail is the browser face of the mail core: the service that
// lists, reads, sends and files mail for a signed-in user (Service), and
// the JSON API under /api/v1 that the pages and the portal use. The pages
// themselves live in mailcore/webmail/ui. It declares what it needs from
// elsewhere (Sessions, Directory, Submitter, FullText, AppPasswords; see
// contract.go) and cmd/govhub wires sso, directory, smtpserver and search
// into it.
//
// Service works over a *mailcore.Store and its SQL rows: lists are sorted
// and paged by the database (indexes of migration 00008), bodies are read
// only to show, download or forward one message. Every method acts on the
// user's own account only; another account's folder or message is
// mailcore.ErrNotFound, as if it did not exist. HTML mail is sanitised with
// bluemonday (no script, event handlers, javascript: URLs, CSS
// expressions, forms, frames, meta or base), remote images are removed
// unless asked for, and cid: images point at the API's part URLs; the
// pages must still show it in a sandboxed frame under a CSP. GB2312, GBK
// and GB18030 mail is decoded with the GB18030 decoder.
//
// Sending builds an RFC 5322 message (UTF-8, RFC 2047 headers, base64
// attachments, CRLF) and hands it to the Submitter, the same path as SMTP
// submission, then keeps the sender's copy in Sent. A sender-requested
// alert (Draft.Alert, for senders Config.AlertSenders allows) adds
// X-Govhub-Alert: requested and a pending row in webmail_alert_requests
// for the notify module.
//
// It stores per-user settings (webmail_settings) and those alert
// requests; nothing else of its own.
//
// Mounting: API's routes carry the /api/v1 prefix (mount it at "/api/v1/"
// without stripping); BadgeHandler serves the portal at "/api/v1/badge"
// (mount it there: the more specific pattern wins). openapi.yaml
// (OpenAPI) documents both.
package webmail

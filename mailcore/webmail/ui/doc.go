// Package ui is webmail's server-rendered pages: the message list,
// reading view, compose, search, folder manager and settings, in zh-CN
// (default) and English. It renders what webmail.Mail returns and owns no
// data of its own; the JSON API (package webmail, /api/v1/), the sign-in
// pages and the session (sso) are mounted beside it, not here.
//
// Routes (mount New at the site root):
//
//	GET  /                                 redirect to the INBOX list
//	GET  /mail/{folder}                    list: ?page= &sort=date|-date|from|subject|size &threads=1 &unread=1
//	POST /mail/{folder}/act                action=read|unread|flag|unflag|move|delete|archive|junk|notjunk on uid=...
//	GET  /mail/{folder}/{uid}              reading view (?images=1 remote images, ?text=1 plain text)
//	GET  /mail/{folder}/{uid}/body         the sanitised HTML, for the sandboxed frame only
//	GET  /mail/{folder}/{uid}/parts/{id}   an attachment, always as a download
//	GET  /mail/{folder}/{uid}/raw          the message as stored (.eml download)
//	GET  /compose                          ?to=PERSON deep link; ?mode=reply|all|forward|draft&folder=&uid=
//	POST /compose                          do=send|save (multipart, within MaxUploadBytes)
//	POST /compose/autosave                 the page script's draft autosave (JSON answer)
//	GET  /compose/suggest?q=               address autocomplete (JSON)
//	GET  /search                           from, to, subject, text, since, before, attach, folder
//	GET  /folders; POST /folders/create, /folders/{id}/rename, /folders/{id}/delete
//	GET  /settings; POST /settings, /settings/app-passwords, /settings/app-passwords/{id}/revoke
//	GET  /static/...                       CSS and JS (embedded)
//
// {folder} is a folder id (a folder name is accepted too, so /mail/INBOX
// works).
//
// Security promises. Without a session a GET is sent to LoginPath with
// ?relay=<the page>, any other method gets 401. Every POST carries
// csrf_token (or X-CSRF-Token from the script), compared in constant time
// with the session's (403 otherwise). Every answer has a CSP allowing only
// our own script and style (no inline script exists), nosniff,
// Referrer-Policy no-referrer, X-Frame-Options DENY and Cache-Control
// no-store for pages. A message's HTML, though sanitised by the service,
// is shown only in <iframe sandbox="allow-popups allow-popups-to-escape-sandbox">
// (links open in a new tab; no script, no same origin, no forms) from
// the body route, whose CSP
// (default-src 'none', images inline or same-origin unless the reader
// asked for remote ones) forbids any script: a sanitiser miss still runs
// nothing and loads no tracker. Attachments are served with
// Content-Disposition: attachment, nosniff and a sandbox CSP.
//
// Every page works without script; static/app.js adds keyboard
// navigation (j/k, Enter, r, x, u, /, c), draft autosave every 20 s and
// on leaving, and address autocomplete.
package ui

// Package webmail is the browser face of the mail core: the service that
// lists, reads, sends and files mail for a signed-in user (Service), and
// the JSON API under /api/v1 that the pages and the portal use. The pages
// themselves live in mailcore/webmail/ui. It declares what it needs from
// elsewhere (Sessions, Directory, Submitter, FullText, AppPasswords; see
// contract.go) and cmd/govhub wires sso, directory, smtpserver and search
// into it. It stores nothing of its own but per-user settings.
package webmail

// Package envelope parses a raw RFC 5322 message, as received over SMTP,
// into the envelope the mail store keeps in SQL beside each message row:
// date, subject, address fields, message and thread ids, whether it has
// attachments and a short preview. Listing, sorting, threading and most
// searches read only that envelope, never the body. Text gives the
// message's readable text for the full-text index, and Attachments its
// attachment names.
//
// The package owns decoding: header folding (RFC 5322), encoded words
// (RFC 2047), MIME structure and transfer encodings (RFC 2045, RFC 2046),
// parameter values (RFC 2231), and the charsets Chinese government mail
// arrives in — GB2312, GBK and GB18030 (all read with the GB18030 decoder),
// Big5 and UTF-8 — labelled, mislabelled or not labelled at all. Malformed
// and hostile mail never makes it fail: it reads what it can, within fixed
// limits (MaxDepth, MaxParts, MaxHeaderBytes), and lists the problems in
// Envelope.Warnings.
//
// It does not own storage (rows, blobs, the full-text index: mailcore's
// store), rendering (webmail shows the message from the blob, sanitising
// HTML itself), address normalisation (lower-casing, IDNA: the caller's),
// or anything that writes mail.
package envelope

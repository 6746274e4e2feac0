// Package adapters holds one sub-package per external system (ldap,
// affairslink, portal, sms, im, clamav, rspamd, s3). Each implements an
// interface a domain package declares; only cmd/govhub imports them.
//
// The local packed-volume blob store is not an external system and lives in
// mailcore/volume.
package adapters

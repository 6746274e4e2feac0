package webmail

import _ "embed"

// OpenAPI is the OpenAPI 3 document of the JSON API (openapi.yaml); the
// API tests validate every request and reply against it.
//
//go:embed openapi.yaml
var OpenAPI []byte

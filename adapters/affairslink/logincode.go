package affairslink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ErrInvalidCode: the affairs link does not know the login code, or it
// was used or has expired (docs/affairslink.md, "Login-code exchange").
// Permanent: the person must start again from the affairs link.
var ErrInvalidCode = errors.New("affairslink: login code invalid, used or expired")

// MaxCodeLength bounds a login code govhub will send on: codes are short
// opaque strings; anything longer is not one.
const MaxCodeLength = 256

// ExchangeLoginCode trades a one-time login code, which the affairs link
// put in the URL it opened govhub with, for the id of the person who
// clicked (the same user id the address book uses as anchor). The code is
// spent by the affairs link at the first exchange it processes.
func (c *Client) ExchangeLoginCode(ctx context.Context, code string) (string, error) {
	if code == "" || len(code) > MaxCodeLength {
		return "", ErrInvalidCode
	}
	body, err := json.Marshal(map[string]string{"code": code})
	if err != nil {
		return "", err
	}
	var out struct {
		UserID string `json:"user_id"`
	}
	err = c.call(ctx, request{method: http.MethodPost, path: "/v1/auth/code", body: body, auth: true}, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest && ae.Code == "invalid_code" {
		return "", ErrInvalidCode
	}
	if err != nil {
		return "", err
	}
	if out.UserID == "" {
		return "", fmt.Errorf("affairslink: code exchange answered without a user id")
	}
	return out.UserID, nil
}

// Package notify will own arrival alerts: rules, preferences, quiet hours,
// rate limits, an outbox and dispatch through the Channel interface it
// declares (implemented by adapters/sms and adapters/im).
//
// Status: not built yet. Nothing here is wired.
package notify

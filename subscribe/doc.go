// Package subscribe will own portal-content subscriptions: channels, items,
// audience rules, subscriptions and digest building, reading content through
// the Source interface it declares (implemented by adapters/portal).
//
// Status: not built yet. Nothing here is wired.
package subscribe

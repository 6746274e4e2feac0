package queue

import "github.com/prometheus/client_golang/prometheus"

// metrics are the queue's Prometheus series. Depth is the database-wide
// count of recipients waiting (for delivery or for their bounce), refreshed
// by every delivery pass, so every process sharing the database reports the
// same figure.
type metrics struct {
	depth      prometheus.Gauge
	deliveries *prometheus.CounterVec
}

// Delivery results, the values of the deliveries counter's result label.
const (
	resultDelivered = "delivered"
	resultDeferred  = "deferred"
	resultBounced   = "bounced"
	resultDSN       = "dsn_sent"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "govhub", Subsystem: "queue", Name: "depth",
			Help: "Recipients waiting in the outbound queue (for delivery or for their bounce).",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "govhub", Subsystem: "queue", Name: "deliveries_total",
			Help: "Outbound delivery outcomes per recipient: delivered, deferred (temporary failure), bounced (permanent failure or expiry), dsn_sent.",
		}, []string{"result"}),
	}
	for _, r := range []string{resultDelivered, resultDeferred, resultBounced, resultDSN} {
		m.deliveries.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.depth, m.deliveries} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

package mailcore

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics are the store's Prometheus series. They exist (unregistered)
// even when no Registerer is given, so the code paths never check for nil.
type storeMetrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
	batch      prometheus.Histogram
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	m := &storeMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govhub_store_deliveries_total",
			Help: "Recipient deliveries by result: delivered, over_quota, not_found, error.",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govhub_store_deliver_seconds",
			Help:    "Time from Deliver's call to its durable return (body synced, rows committed).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "govhub_store_commit_batch_deliveries",
			Help:    "Deliveries sharing one group-commit transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.latency, m.batch)
	}
	return m
}

// observe records the outcome of one Deliver call.
func (m *storeMetrics) observe(start time.Time, results []DeliveryResult, err error) {
	m.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		m.deliveries.WithLabelValues("error").Add(float64(max(len(results), 1)))
		return
	}
	for _, r := range results {
		switch {
		case r.Err == nil:
			m.deliveries.WithLabelValues("delivered").Inc()
		case errors.Is(r.Err, ErrQuotaExceeded):
			m.deliveries.WithLabelValues("over_quota").Inc()
		case errors.Is(r.Err, ErrNotFound):
			m.deliveries.WithLabelValues("not_found").Inc()
		default:
			m.deliveries.WithLabelValues("error").Inc()
		}
	}
}

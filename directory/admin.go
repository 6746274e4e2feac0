package directory

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// AdminHandler is the directory's admin API (mounted by the http module
// under /api/admin/sync/): schedules and run history for IT, the same
// operations as `govhub sync schedule|history|show`. It does no
// authentication itself; the mount point must.
//
//	GET  /schedules                        list with next run times
//	PUT  /schedules/{peer}/{kind}          body {"spec": "*/5 * * * *"}
//	POST /schedules/{peer}/{kind}/pause    and .../resume
//	GET  /runs?peer=&limit=                history, newest first
//	GET  /runs/{id}                        one run with objects and conflicts
func AdminHandler(s *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /schedules", func(w http.ResponseWriter, r *http.Request) {
		ss, err := s.Schedules(r.Context())
		reply(w, ss, err)
	})
	mux.HandleFunc("PUT /schedules/{peer}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Spec string `json:"spec"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil || body.Spec == "" {
			http.Error(w, `{"error":"body must be {\"spec\": \"<cron>\"}"}`, http.StatusBadRequest)
			return
		}
		if err := s.SetSchedule(r.Context(), r.PathValue("peer"), r.PathValue("kind"), body.Spec); err != nil {
			http.Error(w, `{"error":"invalid schedule"}`, http.StatusBadRequest)
			return
		}
		reply(w, map[string]string{"peer": r.PathValue("peer"), "kind": r.PathValue("kind"), "spec": body.Spec}, nil)
	})
	for _, op := range []string{"pause", "resume"} {
		mux.HandleFunc("POST /schedules/{peer}/{kind}/"+op, func(w http.ResponseWriter, r *http.Request) {
			err := s.PauseSchedule(r.Context(), r.PathValue("peer"), r.PathValue("kind"), op == "pause")
			reply(w, map[string]bool{"paused": op == "pause"}, err)
		})
	}
	mux.HandleFunc("GET /runs", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 || limit > 1000 {
			limit = 50
		}
		runs, err := s.Runs(r.Context(), r.URL.Query().Get("peer"), limit)
		reply(w, runs, err)
	})
	mux.HandleFunc("GET /runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, `{"error":"bad run id"}`, http.StatusBadRequest)
			return
		}
		d, err := s.Run(r.Context(), id)
		reply(w, d, err)
	})
	return mux
}

// reply writes v as JSON, or a generic error: 404 for ErrNotFound, 500
// otherwise (details go to the log of the caller, never to the client).
func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	switch {
	case errors.Is(err, ErrNotFound):
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"not found"}`))
	case err != nil:
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":"internal error"}`))
	default:
		json.NewEncoder(w).Encode(v)
	}
}

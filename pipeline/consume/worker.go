package consume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
)

// worker consumes one partition: it fetches a batch, runs the records
// through its engines, publishes the batch's alerts, forwarded flows and
// dead letters in one synchronous write, and commits offsets whose output
// is acknowledged. It runs in one goroutine at a time.
type worker struct {
	s         *stage
	c         *Consumer
	partition int
	log       *slog.Logger
	lag       prometheus.Gauge

	// Offsets: next to read; below warm, records are replayed to rebuild
	// state and their output is dropped (a previous owner published it);
	// below acked, output is acknowledged; committed as last committed.
	next, warm, acked, committed int64
	ok                           bool // the state matches next: the worker may resume there
	flushed                      bool // the engines' open alerts were closed (shutdown)

	plan    *plan
	regs    []*prometheus.Registry // one per engine
	local   *pipeline.Pipeline     // flows topic
	matcher *rules.Matcher         // flows topic: which key groups a flow goes to
	marked  []bool
	groups  map[string]*pipeline.Pipeline // repartition topic: by key group id
	seen    map[source]int64              // repartition topic: last source offset forwarded
	held    reorder                       // repartition topic: records waiting for their turn

	rec           flow.Record
	dec           flow.Decoder // decodes into rec without allocating; this worker's alone
	key, val      []byte
	fetched       time.Time // when the batch arrived
	keyBuf        []byte
	replaying     bool
	commitFailing bool // a commit failed other than for a rebalance; logged once

	// The batch's output.
	out     []kafka.Message
	arena   []byte         // keys, values and header values of out
	hdrs    []kafka.Header // headers of out's forwarded records
	nAlerts int
	n       counts

	emit       func(*rules.Alert)
	mark       func(*rules.Rule)
	dlqLogged  bool
	failing    bool // fetching is failing; logged once
	pubFailing bool // publishing is failing; logged once, counted in c.publishFailing
	isolate    bool // write each message alone: one was refused as too large (write)
}

// counts are a batch's counts, added to the metrics after it.
type counts struct{ consumed, evaluated, forwarded, duplicates, unrouted, late uint64 }

// source is where a repartitioned flow came from: its key group and its
// partition of the flows topic.
type source struct {
	route     string
	partition int32
}

func newWorker(s *stage, partition int) *worker {
	w := &worker{
		s: s, c: s.c, partition: partition,
		log: s.c.log.With("topic", s.topic, "partition", partition),
	}
	w.emit = w.alert
	w.mark = func(r *rules.Rule) {
		for _, g := range w.plan.routes[r] {
			w.marked[g] = true
		}
	}
	return w
}

// run consumes the partition for one generation: until ctx (shutdown) or
// gctx (the generation) is done.
func (w *worker) run(ctx, gctx context.Context, gen *kafka.Generation, committed int64) {
	// At shutdown, returning would end the generation and the group
	// would rejoin before the stage closes it, taking partitions it will
	// not process: the generation ends when the stage closes the group.
	defer func() {
		if ctx.Err() != nil {
			<-gctx.Done()
		}
	}()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(gctx, cancel)()
	w.flushed = false
	w.lag = w.s.lag.WithLabelValues(partitionLabel(w.partition)) // the stage drops it between generations
	if err := w.position(fctx, committed); err != nil {
		if fctx.Err() == nil {
			w.log.Warn("cannot start the partition; giving it back", "err", err)
			select { // ending the generation makes the group rebalance
			case <-fctx.Done():
			case <-time.After(time.Second):
			}
		}
		return
	}
	lastCommit := time.Now()
	backoff := 100 * time.Millisecond
	for fctx.Err() == nil {
		ferr := w.fetch(fctx)
		if w.s.repartition {
			w.releaseHeld(time.Now())
		}
		w.count()
		if !w.publish(ctx, gctx) {
			w.drop("the batch could not be published before the partition was reassigned")
			return
		}
		w.acked = w.held.minOffset(w.next) // held records are not evaluated yet
		if time.Since(lastCommit) >= w.c.cfg.CommitInterval {
			w.commit(gen)
			lastCommit = time.Now()
		}
		if ferr != nil && fctx.Err() == nil {
			if !w.failing {
				w.log.Warn("fetching", "offset", w.next, "err", ferr)
			}
			w.failing = true
			select {
			case <-fctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		w.failing, backoff = false, 100*time.Millisecond
	}
	if ctx.Err() != nil {
		w.shutdown(ctx, gctx)
	}
	w.commit(gen)
}

// position decides where to start: where this worker stopped, if it owned
// the partition last and nobody committed past it; else from the committed
// offset with a state rebuilt from up to Rebuild of history before it.
func (w *worker) position(ctx context.Context, committed int64) error {
	if w.ok && (committed < 0 || committed <= w.next) {
		w.committed = max(committed, 0)
		return nil
	}
	w.reset()
	first, err := w.s.offset(ctx, kafka.FirstOffsetOf(w.partition))
	if err != nil {
		return err
	}
	w.committed = max(committed, 0)
	if committed < first { // none committed (kafka.FirstOffset), or gone by retention
		w.next, w.warm, w.acked = first, first, first
		w.ok = true
		return nil
	}
	if committed > first {
		// Below a committed offset past the end every record would be
		// taken for a replay and its output dropped.
		end, err := w.s.offset(ctx, kafka.LastOffsetOf(w.partition))
		if err != nil {
			return err
		}
		if committed > end {
			w.startOver(committed, first)
			w.ok = true
			return nil
		}
	}
	w.next, w.warm, w.acked = committed, committed, committed
	if d := w.c.cfg.Rebuild; d > 0 && committed > first {
		at, err := w.s.offset(ctx, kafka.TimeOffsetOf(w.partition, time.Now().Add(-d)))
		if err != nil {
			return err
		}
		if at >= 0 && at < committed {
			w.next = max(at, first)
			w.c.m.replayed.WithLabelValues(w.s.topic).Add(float64(committed - w.next))
			w.log.Info("rebuilding rule state", "from", w.next, "committed", committed)
		}
	}
	w.ok = true
	return nil
}

// startOver restarts the partition at its first offset with fresh rule
// state, as Kafka's auto.offset.reset=earliest does: the offset it was
// at is past the partition's end (its log was truncated by an unclean
// leader election, or the group's offsets were set by hand). The next
// commit moves the group's offset back into the partition.
func (w *worker) startOver(at, first int64) {
	w.log.Warn("offset past the end of the partition (its log was truncated, or offsets were set by hand); starting again from the first offset", "offset", at, "first", first)
	w.reset()
	w.next, w.warm, w.acked, w.committed = first, first, first, first-1
}

// reset drops the rule state: new engines on the current rules.
func (w *worker) reset() {
	w.releaseEngines()
	w.plan = nil
	w.local, w.matcher = nil, nil
	w.groups = map[string]*pipeline.Pipeline{}
	w.seen = map[source]int64{}
	w.dropHeld()
	w.syncPlan()
}

// newPipeline builds an engine on set with its own metrics registry.
func (w *worker) newPipeline(set *rules.Set) *pipeline.Pipeline {
	reg := w.c.m.engines.registry()
	w.regs = append(w.regs, reg)
	p, err := pipeline.New(pipeline.Config{Rules: set, Enrich: w.c.cfg.Enrich, Logger: w.c.cfg.Logger, Registry: reg})
	if err != nil {
		panic(err) // SetRules checked the schema
	}
	return p
}

// syncPlan moves the engines to the current rules (hot reload), before
// each batch.
func (w *worker) syncPlan() {
	p := w.c.plan.Load()
	if p == w.plan {
		return
	}
	if !w.s.repartition {
		if w.local == nil {
			w.local = w.newPipeline(p.local)
		} else {
			w.local.Engine().Swap(p.local)
		}
		w.matcher, w.marked = nil, nil
		if p.router != nil {
			w.matcher, w.marked = rules.NewMatcher(p.router), make([]bool, len(p.groups))
		}
	}
	for id, pl := range w.groups {
		if g := p.byID[id]; g != nil {
			pl.Engine().Swap(g.set)
		} else {
			// The key group is gone: close its alerts.
			replaying := w.replaying
			w.replaying = false
			pl.Flush(w.emit)
			w.replaying = replaying
			delete(w.groups, id)
		}
	}
	w.plan = p
}

// fetch reads one batch from the partition and processes it.
func (w *worker) fetch(ctx context.Context) error {
	cfg := &w.c.cfg
	res, err := w.c.client.Fetch(ctx, &kafka.FetchRequest{
		Topic: w.s.topic, Partition: w.partition, Offset: w.next,
		MinBytes: 1, MaxBytes: fetchBytes, MaxWait: cfg.MaxWait,
	})
	if err != nil {
		return err
	}
	if res.Error != nil {
		if errors.Is(res.Error, kafka.OffsetOutOfRange) {
			first, err := w.s.offset(ctx, kafka.FirstOffsetOf(w.partition))
			if err != nil {
				return err
			}
			if first > w.next {
				w.log.Warn("offset out of range (records deleted before they were read); skipping to the first offset", "offset", w.next, "first", first)
				w.next = first
			} else {
				w.startOver(w.next, first)
			}
			return nil
		}
		return res.Error
	}
	// Rules reloaded while the fetch waited apply to its records.
	w.syncPlan()
	w.fetched = time.Now()
	for {
		r, err := res.Records.ReadRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("reading records at offset %d: %w", w.next, err)
		}
		if r.Offset < w.next {
			closeBytes(r)
			continue
		}
		w.key, err = readBytes(w.key[:0], r.Key)
		if err == nil {
			w.val, err = readBytes(w.val[:0], r.Value)
		}
		closeBytes(r)
		if err != nil {
			return fmt.Errorf("reading the record at offset %d: %w", r.Offset, err)
		}
		w.replaying = r.Offset < w.warm
		if w.s.repartition {
			w.repartitioned(r.Offset, r.Headers)
		} else {
			w.flow(r.Offset, r.Headers)
		}
		w.next = r.Offset + 1
	}
	w.replaying = false
	w.lag.Set(float64(max(res.HighWatermark-w.next, 0)))
	return nil
}

func readBytes(b []byte, r kafka.Bytes) ([]byte, error) {
	if r == nil {
		return b, nil
	}
	n := r.Len()
	if cap(b) < n {
		b = make([]byte, n, max(n, 2*cap(b)))
	}
	b = b[:n]
	_, err := io.ReadFull(r, b)
	return b, err
}

func closeBytes(r *kafka.Record) {
	if r.Key != nil {
		r.Key.Close()
	}
	if r.Value != nil {
		r.Value.Close()
	}
}

// flow handles a record of the flows topic.
func (w *worker) flow(off int64, headers []kafka.Header) {
	w.n.consumed++
	if reason, err := w.decode(w.val, headers); err != nil {
		w.deadLetter(off, w.key, w.val, headers, reason, err)
		return
	}
	w.n.evaluated++
	w.local.Engine().SetReplay(w.replaying)
	w.local.Process(&w.rec, w.emit)
	if w.matcher == nil || w.replaying {
		return // a replayed flow was forwarded by the partition's previous owner
	}
	clear(w.marked)
	w.matcher.Match(w.local.Input(), w.mark)
	for i, g := range w.plan.groups {
		if w.marked[i] {
			w.keyBuf = w.matcher.AppendKey(w.keyBuf[:0], g.fields...)
			w.forward(off, headers, g)
		}
	}
}

// forward queues the record (as it was read) for the repartition topic,
// keyed by the key group's values.
func (w *worker) forward(off int64, headers []kafka.Header, g *keyGroup) {
	w.n.forwarded++
	key := w.stash(w.keyBuf)
	val := w.stash(w.val)
	src := len(w.arena)
	w.arena = strconv.AppendInt(w.arena, int64(w.partition), 10)
	w.arena = append(w.arena, '/')
	w.arena = strconv.AppendInt(w.arena, off, 10)
	h := len(w.hdrs)
	w.hdrs = append(w.hdrs,
		kafka.Header{Key: HeaderContentType, Value: contentType(header(headers, HeaderContentType), w)},
		kafka.Header{Key: HeaderRoute, Value: g.route},
		kafka.Header{Key: HeaderSource, Value: w.arena[src:len(w.arena):len(w.arena)]},
	)
	if st := header(headers, flow.HeaderExported); st != nil {
		w.hdrs = append(w.hdrs, kafka.Header{Key: flow.HeaderExported, Value: w.stash(st)})
	}
	hdr := w.hdrs[h:len(w.hdrs):len(w.hdrs)]
	w.out = append(w.out, kafka.Message{Topic: w.c.cfg.RepartitionTopic, Key: key, Value: val, Headers: hdr})
}

// stash copies b into the batch's arena.
//
// It never returns nil, an empty b included: the balancer spreads nil keys
// at random, and a key group without fields must key every flow alike.
func (w *worker) stash(b []byte) []byte {
	if w.arena == nil {
		w.arena = make([]byte, 0, 4096)
	}
	s := len(w.arena)
	w.arena = append(w.arena, b...)
	return w.arena[s:len(w.arena):len(w.arena)]
}

var (
	binaryType = []byte(flow.ContentType)
	jsonType   = []byte(flow.ContentTypeJSON)
)

func contentType(v []byte, w *worker) []byte {
	switch {
	case len(v) == 0 || bytes.Equal(v, binaryType):
		return binaryType
	case bytes.Equal(v, jsonType):
		return jsonType
	}
	return w.stash(v)
}

// repartitioned handles a record of the repartition topic.
func (w *worker) repartitioned(off int64, headers []kafka.Header) {
	w.n.consumed++
	route := header(headers, HeaderRoute)
	g := w.plan.byID[string(route)]
	if g == nil {
		// Forwarded under rules newer than the batch's?
		w.syncPlan()
		if g = w.plan.byID[string(route)]; g == nil {
			w.n.unrouted++
			return
		}
	}
	part, srcOff, ok := parseSource(header(headers, HeaderSource))
	if ok {
		k := source{g.id, part}
		if last, seen := w.seen[k]; seen && srcOff <= last {
			w.n.duplicates++
			return
		}
		w.seen[k] = srcOff
	} else {
		part, srcOff = -1, off
	}
	w.held.hold(off, g.id, part, srcOff, w.key, w.val, headers, w.replaying, w.fetched)
	w.c.m.held.Inc()
}

// releaseHeld evaluates the held records whose turn has come by now (all
// of them when now is zero), in export order.
func (w *worker) releaseHeld(now time.Time) {
	for {
		e, late := w.held.next(now, w.c.cfg.ReorderDelay)
		if e == nil {
			break
		}
		w.c.m.held.Dec()
		if late {
			w.n.late++
		}
		w.replaying = e.replay
		w.evaluateHeld(e)
		w.held.done(e)
	}
	w.replaying = false
}

// evaluateHeld runs a released record through its key group's engine.
func (w *worker) evaluateHeld(e *held) {
	g := w.plan.byID[e.route]
	if g == nil {
		w.n.unrouted++ // the rules changed while it waited
		return
	}
	p := w.groups[g.id]
	if p == nil {
		p = w.newPipeline(g.set)
		w.groups[g.id] = p
	}
	if reason, err := w.decode(e.val, e.headers); err != nil {
		w.deadLetter(e.off, e.key, e.val, e.headers, reason, err)
		return
	}
	w.n.evaluated++
	p.Engine().SetReplay(w.replaying)
	p.Process(&w.rec, w.emit)
}

// dropHeld forgets the held records: the partition's next owner (maybe
// this worker) reads them again from the committed offset.
func (w *worker) dropHeld() {
	w.c.m.held.Sub(float64(w.held.Len()))
	w.held.reset()
}

func parseSource(v []byte) (partition int32, offset int64, ok bool) {
	ps, os, found := strings.Cut(string(v), "/")
	if !found {
		return 0, 0, false
	}
	p, err1 := strconv.ParseInt(ps, 10, 32)
	o, err2 := strconv.ParseInt(os, 10, 64)
	return int32(p), o, err1 == nil && err2 == nil
}

func header(hs []kafka.Header, key string) []byte {
	for i := range hs {
		if hs[i].Key == key {
			return hs[i].Value
		}
	}
	return nil
}

// decode decodes val into w.rec by its content type: the binary wire
// format (also when there is no content type), or JSON.
func (w *worker) decode(val []byte, headers []kafka.Header) (reason string, err error) {
	ct := header(headers, HeaderContentType)
	isJSON := bytes.Equal(ct, jsonType) || (len(ct) == 0 && len(val) > 0 && val[0] == '{')
	switch {
	case isJSON:
		w.rec = flow.Record{}
		if err := json.Unmarshal(val, &w.rec); err != nil {
			return ReasonDecode, fmt.Errorf("JSON flow record: %w", err)
		}
		return w.checkSchema()
	case len(ct) == 0 || bytes.HasPrefix(ct, []byte("application/x-edgeward-flow")):
		err := w.dec.Decode(val, &w.rec)
		switch {
		case errors.Is(err, flow.ErrVersion):
			return ReasonVersion, err
		case err != nil:
			return ReasonDecode, err
		}
		return w.checkSchema()
	}
	return ReasonContentType, fmt.Errorf("content type %q is not a flow record (%s or %s)", ct, flow.ContentType, flow.ContentTypeJSON)
}

// checkSchema refuses a decoded record of another schema than this
// build's: its fields may mean something else, so it is dead-lettered
// rather than guessed at. A record without one (another producer) is
// taken as it is.
func (w *worker) checkSchema() (reason string, err error) {
	if w.rec.Schema != "" && w.rec.Schema != flow.Schema {
		return ReasonVersion, fmt.Errorf("flow record of schema %q (this build reads %s)", w.rec.Schema, flow.Schema)
	}
	return "", nil
}

// deadLetter queues a record that cannot be processed for the dead-letter
// topic, with the reason and where it was read.
func (w *worker) deadLetter(off int64, key, val []byte, headers []kafka.Header, reason string, err error) {
	if w.replaying {
		return // its previous owner sent it
	}
	hdr := make([]kafka.Header, 0, len(headers)+5)
	for _, h := range headers {
		hdr = append(hdr, kafka.Header{Key: h.Key, Value: w.stash(h.Value)})
	}
	w.out = append(w.out, w.deadLetterMessage(off, w.stash(key), w.stash(val), hdr, reason, err))
}

// deadLetterMessage counts a dead letter and makes its message: key, val
// and hdr (which it appends to) are the batch's own.
func (w *worker) deadLetterMessage(off int64, key, val []byte, hdr []kafka.Header, reason string, err error) kafka.Message {
	w.c.m.dlq.WithLabelValues(reason).Inc()
	w.c.stats.dlq.Add(1)
	where := fmt.Sprintf("%s partition %d offset %d", w.s.topic, w.partition, off)
	if !w.dlqLogged {
		w.log.Warn("record sent to the dead-letter topic (further ones are only counted)", "offset", off, "reason", reason, "err", err)
		w.dlqLogged = true
	} else {
		w.log.Debug("record sent to the dead-letter topic", "offset", off, "reason", reason, "err", err)
	}
	hdr = append(hdr,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDLQError, Value: []byte(where + ": " + err.Error())},
		kafka.Header{Key: HeaderDLQTopic, Value: []byte(w.s.topic)},
		kafka.Header{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(w.partition))},
		kafka.Header{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(off, 10))},
	)
	return kafka.Message{Topic: w.c.cfg.DLQTopic, Key: key, Value: val, Headers: hdr}
}

// unforwardable turns a flow's copy for the repartition topic that the
// topic refused as too large into a dead letter: retrying would block the
// partition for good. It keeps the record's own headers; its origin is
// the flows topic offset it was forwarded from.
func (w *worker) unforwardable(m kafka.Message, err error) kafka.Message {
	_, off, _ := parseSource(header(m.Headers, HeaderSource))
	hdr := make([]kafka.Header, 0, len(m.Headers)+5)
	for _, h := range m.Headers {
		if h.Key != HeaderRoute && h.Key != HeaderSource {
			hdr = append(hdr, h)
		}
	}
	return w.deadLetterMessage(off, m.Key, m.Value, hdr, ReasonRepartitionTooLarge, err)
}

// messageBytes is about the bytes a message adds to a record batch before
// compression (the record's framing is a few dozen bytes).
func messageBytes(m *kafka.Message) int {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 8 + len(h.Key) + len(h.Value)
	}
	return n
}

// shrinkDeadLetter replaces a dead letter too large for the dead-letter
// topic (a record near the flows topic's max.message.bytes, plus the
// reason headers) by its reason and origin alone, saying so in
// HeaderDLQTruncated: the record itself stays in its topic, at the offset
// the headers give, until retention deletes it.
func (w *worker) shrinkDeadLetter(m kafka.Message) kafka.Message {
	hdr := make([]kafka.Header, 0, 6)
	for _, h := range m.Headers {
		switch h.Key {
		case HeaderDLQReason, HeaderDLQError, HeaderDLQTopic, HeaderDLQPartition, HeaderDLQOffset:
			hdr = append(hdr, h)
		}
	}
	why := fmt.Sprintf("too large for the dead-letter topic: key (%d bytes), value (%d bytes) and %d headers left out",
		len(m.Key), len(m.Value), len(m.Headers)-len(hdr))
	w.log.Warn("dead letter "+why, "offset", string(header(hdr, HeaderDLQOffset)))
	return kafka.Message{Topic: m.Topic, Key: []byte{}, Headers: append(hdr, kafka.Header{Key: HeaderDLQTruncated, Value: []byte(why)})}
}

// alert queues an alert for the alerts topic, keyed by device.
func (w *worker) alert(a *rules.Alert) {
	if w.replaying {
		return // its previous owner published it
	}
	if a.ActivityID == rules.ActivityCreate {
		cat := ""
		if len(a.FindingInfo.Types) > 0 {
			cat = a.FindingInfo.Types[0]
		}
		w.c.m.alerts.WithLabelValues(a.FindingInfo.Analytic.UID, a.Severity, cat).Inc()
	}
	b, err := json.Marshal(a)
	if err != nil {
		w.log.Error("encoding an alert", "rule", a.FindingInfo.Analytic.UID, "err", err)
		return
	}
	w.nAlerts++
	w.out = append(w.out, kafka.Message{
		Topic: w.c.cfg.AlertsTopic, Key: alertKey(a), Value: b,
		Headers: []kafka.Header{{Key: HeaderContentType, Value: jsonType}, {Key: HeaderFindingUID, Value: []byte(a.FindingInfo.UID)}},
	})
}

// alertKey is the device: its inventory id, else its address or MAC; the
// finding uid for an alert without a device.
func alertKey(a *rules.Alert) []byte {
	if d := a.Device; d != nil {
		for _, k := range []string{d.UID, d.IP, d.MAC} {
			if k != "" {
				return []byte(k)
			}
		}
	}
	return []byte(a.FindingInfo.UID)
}

// count adds the batch's counts to the metrics.
func (w *worker) count() {
	m, n := w.c.m, &w.n
	if w.s.repartition {
		m.repConsumed.Add(float64(n.consumed))
	} else {
		m.consumed.Add(float64(n.consumed))
		w.c.stats.consumed.Add(n.consumed)
	}
	m.evaluations.Add(float64(n.evaluated))
	m.forwarded.Add(float64(n.forwarded))
	w.c.stats.forwarded.Add(n.forwarded)
	m.duplicates.Add(float64(n.duplicates))
	m.unrouted.Add(float64(n.unrouted))
	m.late.Add(float64(n.late))
	*n = counts{}
}

// publish writes the batch's output and waits for every replica's
// acknowledgement, retrying. It gives up, returning false, when the
// partition is reassigned (gctx done) or, at shutdown, after FlushTimeout.
func (w *worker) publish(ctx, gctx context.Context) bool {
	if len(w.out) == 0 {
		return true
	}
	var deadline time.Time
	backoff := 100 * time.Millisecond
	for {
		err := w.write()
		if err == nil {
			break
		}
		w.c.m.pubErrors.Inc()
		if !w.pubFailing {
			w.pubFailing = true
			w.c.publishFailing.Add(1)
			w.log.Warn("publishing a batch (retrying)", "messages", len(w.out), "err", err)
		}
		if ctx.Err() != nil {
			if deadline.IsZero() {
				deadline = time.Now().Add(w.c.cfg.FlushTimeout)
			}
			if time.Now().After(deadline) {
				w.endPublishFailing()
				return false
			}
		} else if gctx.Err() != nil {
			w.endPublishFailing()
			return false
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-gctx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	if w.pubFailing {
		w.log.Info("publishing works again")
	}
	w.endPublishFailing()
	w.c.m.published.Add(float64(w.nAlerts))
	w.c.stats.published.Add(uint64(w.nAlerts))
	w.resetBatch()
	return true
}

// endPublishFailing ends the worker's failing spell: its batch was
// published, or given up with the partition. The instance is not ready
// while any worker's publishing fails.
func (w *worker) endPublishFailing() {
	if w.pubFailing {
		w.pubFailing = false
		w.c.publishFailing.Add(-1)
	}
}

// write writes the batch's output, at most batchBytes of it per
// WriteMessages, and keeps in w.out the messages that failed; it returns
// the first error.
//
// A message too large for its topic would be refused on every retry and
// block the partition for good, so it is replaced (shrinkDeadLetter,
// unforwardable). The broker refuses a whole record batch for one large
// message in it, though, and the shared writer puts other workers'
// messages in it too, so a refusal names its message only when that was
// the batch's only one: after one, the next write (w.isolate) writes each
// message alone with a writer of its own.
func (w *worker) write() error {
	var first error
	kept, limit, isolate, out := 0, batchBytes, false, w.c.out
	if w.isolate {
		limit, out = 0, newWriter(&w.c.cfg)
		defer out.Close()
	}
	for start := 0; start < len(w.out); {
		end, n := start+1, messageBytes(&w.out[start])
		for end < len(w.out) {
			if n += messageBytes(&w.out[end]); n > limit {
				break
			}
			end++
		}
		chunk := w.out[start:end]
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := out.WriteMessages(ctx, chunk...)
		cancel()
		if err != nil && first == nil {
			first = err
		}
		var we kafka.WriteErrors
		perMessage := errors.As(err, &we) && len(we) == len(chunk)
		for i, m := range chunk {
			merr := err
			if perMessage {
				merr = we[i]
			}
			if merr == nil {
				continue
			}
			if errors.Is(merr, kafka.MessageSizeTooLarge) {
				switch {
				case out == w.c.out:
					isolate = true
				case m.Topic == w.c.cfg.DLQTopic:
					m = w.shrinkDeadLetter(m)
				case m.Topic == w.c.cfg.RepartitionTopic:
					m = w.unforwardable(m, merr)
				}
			}
			w.out[kept] = m // kept <= start+i: chunk[i] is read already
			kept++
		}
		start = end
	}
	clear(w.out[kept:])
	w.out, w.isolate = w.out[:kept], isolate
	return first
}

// resetBatch empties the batch's output for the next batch.
func (w *worker) resetBatch() {
	clear(w.out) // drop references into the arena and to alerts
	clear(w.hdrs)
	w.out, w.arena, w.hdrs, w.nAlerts = w.out[:0], w.arena[:0], w.hdrs[:0], 0
}

// commit commits the acknowledged offset, if it moved. It does not need
// the rule state (ok): acked only ever moves past records whose output is
// acknowledged, and shutdown gives up the state before its commit.
func (w *worker) commit(gen *kafka.Generation) {
	if w.acked <= w.committed {
		return
	}
	if err := w.s.commit(gen, w.partition, w.acked); err != nil {
		w.c.m.commitErr.Inc()
		// A commit refused because the generation ended is routine (the
		// next owner re-reads from the last commit); any other failure is
		// logged once per streak: offsets stuck behind mean re-reading
		// (and repeated alerts) after every rebalance.
		routine := errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.IllegalGeneration) ||
			errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, context.Canceled)
		if !routine && !w.commitFailing {
			w.log.Warn("committing offsets failed (further failures are only counted until one succeeds)", "offset", w.acked, "err", err)
		} else {
			w.log.Debug("committing", "offset", w.acked, "err", err)
		}
		w.commitFailing = w.commitFailing || !routine
		return
	}
	w.committed, w.commitFailing = w.acked, false
}

// shutdown evaluates the held records, closes the engines' open alerts
// and publishes them; once they are acknowledged, every record read is
// too, and the caller's commit covers them.
func (w *worker) shutdown(ctx, gctx context.Context) {
	w.releaseHeld(time.Time{})
	w.replaying = false
	if w.local != nil {
		w.local.Flush(w.emit)
	}
	for _, p := range w.groups {
		p.Flush(w.emit)
	}
	w.count()
	if w.publish(ctx, gctx) {
		w.acked = w.next
	} else {
		w.log.Error("alerts closed at shutdown could not be published", "alerts", w.nAlerts)
	}
	w.flushed, w.ok = true, false
}

// drop gives up the partition's state: its next owner (maybe this worker)
// re-reads from the last commit.
func (w *worker) drop(why string) {
	w.log.Warn("dropping the partition's rule state", "reason", why, "committed", w.committed)
	w.c.m.lost.Inc()
	w.resetBatch()
	w.dropHeld()
	w.ok = false
}

func (w *worker) releaseEngines() {
	for _, reg := range w.regs {
		w.c.m.engines.release(reg)
	}
	w.regs = nil
}

// release frees a partition that went to another member.
func (w *worker) release() {
	w.dropHeld()
	w.releaseEngines()
	w.s.lag.DeleteLabelValues(partitionLabel(w.partition))
}

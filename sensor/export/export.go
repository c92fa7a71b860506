// Package export sends the sensor's flow records to Kafka, and keeps them
// in a disk spool (package spool) while Kafka cannot take them.
//
// Records are encoded as they are exported (flow.AppendBinary, or JSON),
// keyed by device (inventory id, else the device's address, else the
// initiator's address) so one device's flows stay in order on one
// partition, batched, and written with acks=all. Three goroutines move
// them: the caller's Export fills batches (a flusher closes a batch after
// Linger), the intake hands each batch to the sender or, when the sender is
// failing or busy for longer than Handoff, appends it to the spool; the
// sender writes to Kafka, and while the spool holds records it replays the
// spool instead, oldest first, until it is empty. A batch that fails goes
// to the front of the spool, so records reach Kafka in the order they were
// exported, per partition.
//
// Delivery is at least once: a write whose acknowledgement is lost (the
// broker fails after storing it) is sent again from the spool. Record ids
// are unique, so consumers can drop such duplicates.
package export

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/sensor/export/spool"
	"github.com/segmentio/kafka-go"
)

// DefaultTopic is the flows topic.
const DefaultTopic = "edgeward.flows.v1"

// Format is a record encoding on the flows topic.
type Format uint8

// Formats; the value is stored with each spooled record.
const (
	Binary Format = 1 // flow.AppendBinary, content type flow.ContentType
	JSON   Format = 2 // flow.AppendJSON, content type application/json
)

// stamped marks a spooled record that carries its export stamp (after the
// key: its length and decimal bytes); records spooled by versions before
// the stamp lack it.
const stamped = 0x80

// ParseFormat parses "binary" or "json".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "binary", "":
		return Binary, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("format %q: want binary or json", s)
}

// Header keys of every message.
const (
	HeaderContentType = "content-type"
	HeaderSchema      = "schema"
	HeaderExported    = flow.HeaderExported // the export stamp, strictly increasing
)

// Writer writes messages to Kafka: a *kafka.Writer, or a fake in tests.
// WriteMessages returns kafka.WriteErrors when only some messages failed.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Config configures an Exporter.
type Config struct {
	Brokers   []string
	Topic     string           // default DefaultTopic
	Transport *kafka.Transport // TLS, SASL, client id (package kafkaconn); nil: plain TCP
	// Compression of record batches: none, gzip, snappy, lz4 (default) or zstd.
	Compression string
	Format      Format // default Binary

	BatchRecords int           // records per batch; default 1000
	BatchBytes   int           // encoded bytes per batch; default 1 MiB
	Linger       time.Duration // how long a batch waits to fill; default 100ms

	Spool spool.Options // Dir is required
	// Handoff is how long a batch waits for a busy Kafka writer before it
	// goes to the spool; default 1s.
	Handoff time.Duration
	// RetryMin and RetryMax bound the pause between attempts to reach
	// Kafka while records are spooled; defaults 250ms and 5s.
	RetryMin, RetryMax time.Duration

	Writer  Writer // nil: a kafka-go Writer for Brokers
	Logger  *slog.Logger
	Metrics *Metrics // nil: unregistered metrics
}

func (c *Config) defaults() error {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Format == 0 {
		c.Format = Binary
	}
	if c.BatchRecords <= 0 {
		c.BatchRecords = 1000
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.Linger <= 0 {
		c.Linger = 100 * time.Millisecond
	}
	if c.Handoff <= 0 {
		c.Handoff = time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 250 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(5*time.Second, c.RetryMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Spool.Dir == "" {
		return errors.New("export: a spool directory is required")
	}
	if c.Writer == nil && len(c.Brokers) == 0 {
		return errors.New("export: no Kafka brokers")
	}
	return nil
}

// Compression parses a compression name.
func Compression(name string) (kafka.Compression, error) {
	switch strings.ToLower(name) {
	case "none":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4", "":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// Exporter exports flow records. Export is called from one goroutine (the
// sensor's emit callback); Close from any.
type Exporter struct {
	cfg     Config
	log     *slog.Logger
	m       *Metrics
	w       Writer
	sp      *spool.Spool
	headers [3][]kafka.Header // by Format

	bmu    sync.Mutex // guards cur, and sending on full
	cur    *batch
	closed bool
	free   chan *batch
	full   chan *batch // Export and the flusher -> intake
	direct chan *batch // intake -> sender, while not spooling
	kick   chan struct{}
	toDisk chan struct{} // sender -> intake: stop waiting, spool

	smu      sync.Mutex // guards spooling and orders spool writes with it
	spooling bool       // records wait in the spool: new ones go there too
	since    time.Time  // when spooling began

	wctx      context.Context // cancelled only when Close gives up waiting
	cancel    context.CancelFunc
	stopFlush chan struct{}
	flushDone chan struct{}
	inDone    chan struct{}
	sendDone  chan struct{}
	closeOnce sync.Once

	exported, spooled, replayed, failures, unreadable atomic.Uint64

	lastStamp int64  // under bmu
	stampText []byte // lastStamp in decimal, under bmu

	// intake-owned
	inMsgs    messages
	inScratch []byte
	inPayload [][]byte

	// sender-owned
	outMsgs messages
	pending []kafka.Message // replayed messages not yet acknowledged
	pendHdr []kafka.Header  // pending's headers when stamped: reused, not one slice per record
	mark    spool.Mark
	peekBuf [][]byte
	scratch []byte
	payload [][]byte
}

type batch struct {
	buf   []byte
	spans []span
	start time.Time
}

// span locates one record in a batch's buffer: key [k, v), value [v, end),
// export stamp (decimal) [end, stamp).
type span struct{ k, v, end, stamp int }

// New opens the spool (replaying what it holds from before once Kafka
// answers) and starts the exporter.
func New(cfg Config) (*Exporter, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	comp, err := Compression(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if cfg.Spool.Logger == nil {
		cfg.Spool.Logger = cfg.Logger
	}
	sp, err := spool.Open(cfg.Spool)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	e := &Exporter{
		cfg: cfg, log: cfg.Logger, m: cfg.Metrics, sp: sp, w: cfg.Writer,
		free:      make(chan *batch, 16),
		full:      make(chan *batch, 8),
		direct:    make(chan *batch),
		kick:      make(chan struct{}, 1),
		toDisk:    make(chan struct{}, 1),
		stopFlush: make(chan struct{}),
		flushDone: make(chan struct{}),
		inDone:    make(chan struct{}),
		sendDone:  make(chan struct{}),
	}
	schema := []byte(flow.Schema)
	e.headers[Binary] = []kafka.Header{{Key: HeaderContentType, Value: []byte(flow.ContentType)}, {Key: HeaderSchema, Value: schema}}
	e.headers[JSON] = []kafka.Header{{Key: HeaderContentType, Value: []byte(flow.ContentTypeJSON)}, {Key: HeaderSchema, Value: schema}}
	if e.w == nil {
		tr := cfg.Transport
		if tr == nil {
			tr = &kafka.Transport{ClientID: "edgeward-sensor"}
		}
		e.w = newProducer(cfg.Brokers, cfg.Topic, comp, tr)
	}
	e.m.watch(sp)
	if sp.Len() > 0 {
		e.spooling, e.since = true, time.Now()
	} else {
		e.m.up.Set(1)
	}
	e.wctx, e.cancel = context.WithCancel(context.Background())
	go e.flusher()
	go e.intake()
	go e.send()
	return e, nil
}

// Export queues a record (which the caller may reuse when Export returns).
// It blocks only while the intake is behind (a full channel of batches).
func (e *Exporter) Export(r *flow.Record) {
	e.bmu.Lock()
	if e.closed {
		e.bmu.Unlock()
		return
	}
	b := e.cur
	if b == nil {
		b = e.newBatch()
		e.cur = b
	}
	k := len(b.buf)
	b.buf = appendKey(b.buf, r)
	v := len(b.buf)
	if e.cfg.Format == JSON {
		b.buf = r.AppendJSON(b.buf)
	} else {
		b.buf = r.AppendBinary(b.buf)
	}
	end := len(b.buf)
	b.buf = e.appendStamp(b.buf, b)
	b.spans = append(b.spans, span{k, v, end, len(b.buf)})
	if len(b.spans) >= e.cfg.BatchRecords || len(b.buf) >= e.cfg.BatchBytes {
		e.full <- b
		e.cur = nil
	}
	e.bmu.Unlock()
}

// appendStamp appends the next export stamp in decimal (under bmu): the
// time the batch began, in nanoseconds since the epoch, moved past the
// previous stamp, so that stamps increase strictly in export order even
// when the wall clock steps back, at no clock read per record. Within a
// batch each stamp is the previous one plus one, so it is formatted by
// incrementing the previous one's digits.
func (e *Exporter) appendStamp(dst []byte, b *batch) []byte {
	t := b.start.UnixNano()
	if t <= e.lastStamp {
		t = e.lastStamp + 1
	}
	if t != e.lastStamp+1 || !incDecimal(e.stampText) {
		e.stampText = strconv.AppendInt(e.stampText[:0], t, 10)
	}
	e.lastStamp = t
	return append(dst, e.stampText...)
}

// incDecimal adds one to the decimal number d in place; false (and d
// spoilt) if the sum needs another digit.
func incDecimal(d []byte) bool {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i] != '9' {
			d[i]++
			return true
		}
		d[i] = '0'
	}
	return false
}

// appendKey appends the message key: the device's inventory id, else its
// address, else the initiator's address.
func appendKey(b []byte, r *flow.Record) []byte {
	if d := r.Device; d != nil {
		if d.ID != "" {
			return append(b, d.ID...)
		}
		if d.IP.IsValid() {
			return d.IP.AppendTo(b)
		}
	}
	return r.Src.IP.AppendTo(b)
}

func (e *Exporter) newBatch() *batch {
	var b *batch
	select {
	case b = <-e.free:
		b.buf, b.spans = b.buf[:0], b.spans[:0]
	default:
		b = &batch{buf: make([]byte, 0, e.cfg.BatchBytes+64<<10), spans: make([]span, 0, e.cfg.BatchRecords)}
	}
	b.start = time.Now()
	return b
}

func (e *Exporter) recycle(b *batch) {
	select {
	case e.free <- b:
	default:
	}
}

// messages are a batch's records as Kafka messages, made by the goroutine
// that sends or spools the batch in a slice it reuses, which stays in the
// CPU cache where one per batch would not.
type messages struct {
	msgs []kafka.Message
	hdrs []kafka.Header // msgs' headers, three each
}

// build makes b's messages: h's headers and the export stamp.
func (m *messages) build(b *batch, h []kafka.Header) []kafka.Message {
	m.msgs = m.msgs[:0]
	m.hdrs = slices.Grow(m.hdrs[:0], (len(h)+1)*len(b.spans)) // no growth below: msgs share it
	for _, s := range b.spans {
		i := len(m.hdrs)
		m.hdrs = append(m.hdrs, h...)
		m.hdrs = append(m.hdrs, kafka.Header{Key: HeaderExported, Value: b.buf[s.end:s.stamp:s.stamp]})
		m.msgs = append(m.msgs, kafka.Message{Key: b.buf[s.k:s.v:s.v], Value: b.buf[s.v:s.end:s.end], Headers: m.hdrs[i:len(m.hdrs):len(m.hdrs)]})
	}
	return m.msgs
}

// flusher closes batches older than Linger and syncs the spool every
// second.
func (e *Exporter) flusher() {
	defer close(e.flushDone)
	t := time.NewTicker(e.cfg.Linger)
	defer t.Stop()
	lastSync := time.Now()
	for {
		select {
		case <-e.stopFlush:
			return
		case now := <-t.C:
			e.bmu.Lock()
			if b := e.cur; b != nil && len(b.spans) > 0 && now.Sub(b.start) >= e.cfg.Linger {
				e.full <- b
				e.cur = nil
			}
			e.bmu.Unlock()
			if now.Sub(lastSync) >= time.Second {
				lastSync = now
				if err := e.sp.Sync(); err != nil {
					e.log.Error("syncing the spool", "err", err)
				}
			}
		}
	}
}

func (e *Exporter) isSpooling() bool {
	e.smu.Lock()
	defer e.smu.Unlock()
	return e.spooling
}

// intake passes each batch to the sender, or to the spool while records
// wait there or the sender is stuck.
func (e *Exporter) intake() {
	defer close(e.inDone)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for b := range e.full {
		if !e.isSpooling() {
			t.Reset(e.cfg.Handoff)
			select {
			case e.direct <- b:
				t.Stop()
				continue
			case <-e.toDisk:
			case <-t.C:
			}
			t.Stop()
		}
		e.spoolBatch(b)
		e.recycle(b)
	}
}

// payloads encodes messages as spool records (appendSpool).
func payloads(scratch []byte, out [][]byte, f Format, msgs []kafka.Message, keep func(i int) bool) ([]byte, [][]byte) {
	scratch, out = scratch[:0], out[:0]
	n := 0
	for i := range msgs {
		if keep == nil || keep(i) {
			n += spoolLen(&msgs[i])
		}
	}
	scratch = slices.Grow(scratch, n) // no growth below: out's records stay slices of it
	for i := range msgs {
		if keep == nil || keep(i) {
			start := len(scratch)
			scratch = appendSpool(scratch, f, &msgs[i])
			out = append(out, scratch[start:len(scratch):len(scratch)])
		}
	}
	return scratch, out
}

// appendSpool appends a message as a spool record: format (flagged
// stamped when the message has an export stamp), key length, key, then the
// stamp's length and decimal bytes if stamped, then the value.
func appendSpool(b []byte, f Format, m *kafka.Message) []byte {
	st := stampHeader(m)
	if st != nil {
		b = append(b, byte(f)|stamped)
	} else {
		b = append(b, byte(f))
	}
	b = binary.AppendUvarint(b, uint64(len(m.Key)))
	b = append(b, m.Key...)
	if st != nil {
		b = binary.AppendUvarint(b, uint64(len(st)))
		b = append(b, st...)
	}
	return append(b, m.Value...)
}

func spoolLen(m *kafka.Message) int {
	n := 1 + uvarintLen(uint64(len(m.Key))) + len(m.Key) + len(m.Value)
	if st := stampHeader(m); st != nil {
		n += uvarintLen(uint64(len(st))) + len(st)
	}
	return n
}

// stampHeader is a message's export stamp header value, nil if none.
func stampHeader(m *kafka.Message) []byte {
	for _, h := range m.Headers {
		if h.Key == HeaderExported {
			return h.Value
		}
	}
	return nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// spoolBatch appends a batch to the spool (intake only).
func (e *Exporter) spoolBatch(b *batch) {
	var recs [][]byte
	msgs := e.inMsgs.build(b, e.headers[e.cfg.Format])
	e.inScratch, recs = payloads(e.inScratch, e.inPayload, e.cfg.Format, msgs, nil)
	e.inPayload = recs
	e.smu.Lock()
	err := e.sp.Append(recs...)
	started := !e.spooling
	if started {
		e.spooling, e.since = true, time.Now()
	}
	e.smu.Unlock()
	e.m.up.Set(0)
	if err != nil {
		e.log.Error("spool: records lost", "records", len(recs), "err", err)
		return
	}
	e.spooled.Add(uint64(len(recs)))
	e.m.spooled.Add(float64(len(recs)))
	if started {
		e.log.Warn("Kafka writer busy; spooling flow records to disk", "spool", e.cfg.Spool.Dir)
	}
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// send is the one goroutine that writes to Kafka.
func (e *Exporter) send() {
	defer close(e.sendDone)
	wait := e.cfg.RetryMin
	for {
		if e.isSpooling() {
			if e.replay() {
				wait = e.cfg.RetryMin
				continue
			}
			select {
			case <-time.After(wait):
			case <-e.wctx.Done():
				return
			}
			wait = min(2*wait, e.cfg.RetryMax)
			continue
		}
		select {
		case b := <-e.direct:
			e.writeDirect(b)
		case <-e.kick:
		case <-e.inDone:
			if !e.isSpooling() {
				return
			}
		case <-e.wctx.Done():
			return
		}
	}
}

// outcome returns, for a WriteMessages error over n messages, the error
// of each message (nil: written).
func outcome(n int, err error) func(i int) error {
	var we kafka.WriteErrors
	if errors.As(err, &we) && len(we) == n {
		return func(i int) error { return we[i] }
	}
	return func(int) error { return err }
}

// retry sorts the messages of a failed write: it counts those Kafka took,
// drops (and counts) those it never will, and returns which to retry.
func (e *Exporter) retry(msgs []kafka.Message, err error, replayed bool) func(i int) bool {
	out := outcome(len(msgs), err)
	ok, rejected := 0, 0
	var reason error
	for i := range msgs {
		switch err := out(i); {
		case err == nil:
			ok++
		case permanent(err):
			rejected++
			reason = err
		}
	}
	if ok > 0 {
		e.acked(ok, replayed)
	}
	if rejected > 0 {
		e.m.rejected.Add(float64(rejected))
		e.log.Error("Kafka rejected flow records; they are dropped", "records", rejected, "err", reason)
	}
	return func(i int) bool { err := out(i); return err != nil && !permanent(err) }
}

func (e *Exporter) writeDirect(b *batch) {
	defer e.recycle(b)
	msgs := e.outMsgs.build(b, e.headers[e.cfg.Format])
	err := e.w.WriteMessages(e.wctx, msgs...)
	if err == nil {
		e.acked(len(msgs), false)
		return
	}
	keep := e.retry(msgs, err, false)
	var recs [][]byte
	e.scratch, recs = payloads(e.scratch, e.payload, e.cfg.Format, msgs, keep)
	e.payload = recs
	if len(recs) == 0 {
		return
	}
	e.failures.Add(1)
	e.m.errors.Inc()
	e.m.up.Set(0)
	// Before the batches the intake spooled while this one was in flight.
	e.smu.Lock()
	perr := e.sp.Prepend(recs...)
	started := !e.spooling
	if started {
		e.spooling, e.since = true, time.Now()
	}
	e.smu.Unlock()
	select {
	case e.toDisk <- struct{}{}:
	default:
	}
	if perr != nil {
		e.log.Error("spool: records lost", "records", len(recs), "err", perr)
		return
	}
	e.spooled.Add(uint64(len(recs)))
	e.m.spooled.Add(float64(len(recs)))
	if started {
		e.log.Warn("Kafka unreachable; spooling flow records to disk until it answers", "err", err, "spool", e.cfg.Spool.Dir)
	} else {
		e.log.Debug("Kafka write failed", "err", err)
	}
}

func (e *Exporter) acked(n int, replayed bool) {
	e.exported.Add(uint64(n))
	e.m.records.Add(float64(n))
	e.m.batches.Inc()
	if replayed {
		e.replayed.Add(uint64(n))
		e.m.replayed.Add(float64(n))
	}
}

// replay sends the oldest spooled records; false means Kafka failed and
// the caller should wait before the next try.
func (e *Exporter) replay() bool {
	if len(e.pending) == 0 {
		recs, mark, err := e.sp.Peek(e.peekBuf, e.cfg.BatchRecords, e.cfg.BatchBytes)
		e.peekBuf = recs
		if err != nil {
			e.log.Error("reading the spool", "err", err)
			return false
		}
		if len(recs) == 0 {
			e.smu.Lock()
			if e.sp.Len() == 0 && e.spooling {
				e.spooling = false
				select { // a signal from the outage, not needed now
				case <-e.toDisk:
				default:
				}
				e.m.up.Set(1)
				e.log.Info("Kafka reachable; spool drained", "spooled_for", time.Since(e.since).Round(time.Millisecond), "replayed_total", e.replayed.Load())
			}
			e.smu.Unlock()
			return true
		}
		e.mark = mark
		e.decode(recs)
		if len(e.pending) == 0 {
			return e.commit()
		}
	}
	err := e.w.WriteMessages(e.wctx, e.pending...)
	if err == nil {
		e.acked(len(e.pending), true)
		e.pending = e.pending[:0]
		return e.commit()
	}
	e.failures.Add(1)
	e.m.errors.Inc()
	e.log.Debug("Kafka write of spooled records failed", "err", err)
	keep := e.retry(e.pending, err, true)
	n := 0
	for i := range e.pending {
		if keep(i) {
			e.pending[n] = e.pending[i]
			n++
		}
	}
	e.pending = e.pending[:n]
	if n == 0 {
		return e.commit()
	}
	return false
}

func (e *Exporter) commit() bool {
	if err := e.sp.Commit(e.mark); err != nil {
		e.log.Error("spool commit", "err", err)
		return false
	}
	return true
}

// decode turns spooled records into pending messages, skipping those
// this version cannot read (spooled by a newer one before a downgrade):
// they are lost, so counted.
func (e *Exporter) decode(recs [][]byte) {
	e.pendHdr = slices.Grow(e.pendHdr[:0], 3*len(recs)) // two headers and the stamp each
	skipped := 0
	for _, p := range recs {
		m, ok := e.message(p)
		if !ok {
			skipped++
			continue
		}
		e.pending = append(e.pending, m)
	}
	if skipped > 0 {
		e.unreadable.Add(uint64(skipped))
		e.m.skipped.Add(float64(skipped))
		e.log.Warn("spool: skipping records this version cannot read (spooled by a newer version?); they are lost", "records", skipped, "spool", e.cfg.Spool.Dir)
	}
}

// message decodes a spool record into a message (key and value are
// slices of p, the headers of e's headers and pendHdr).
func (e *Exporter) message(p []byte) (kafka.Message, bool) {
	if len(p) < 2 {
		return kafka.Message{}, false
	}
	f := Format(p[0] &^ stamped)
	if f != Binary && f != JSON {
		return kafka.Message{}, false
	}
	n, k := binary.Uvarint(p[1:])
	if k <= 0 || n > uint64(len(p)-1-k) {
		return kafka.Message{}, false
	}
	ks := 1 + k
	ke := ks + int(n)
	m := kafka.Message{Key: p[ks:ke:ke], Headers: e.headers[f]}
	if p[0]&stamped != 0 {
		n, k := binary.Uvarint(p[ke:])
		if k <= 0 || n > uint64(len(p)-ke-k) {
			return kafka.Message{}, false
		}
		ss := ke + k
		ke = ss + int(n)
		i := len(e.pendHdr)
		e.pendHdr = append(append(e.pendHdr, m.Headers...), kafka.Header{Key: HeaderExported, Value: p[ss:ke:ke]})
		m.Headers = e.pendHdr[i:len(e.pendHdr):len(e.pendHdr)]
	}
	m.Value = p[ke:]
	return m, true
}

// Stats count what the exporter did since New.
type Stats struct {
	Exported uint64 // records Kafka acknowledged
	Spooled  uint64 // records written to the spool
	Replayed uint64 // records sent from the spool
	Failures uint64 // failed Kafka writes
	Spooling bool   // records wait in the spool now
	Spool    spool.Stats

	Unreadable uint64 // spooled records this version cannot read (spooled by a newer one), skipped
}

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	return Stats{Exported: e.exported.Load(), Spooled: e.spooled.Load(), Replayed: e.replayed.Load(), Failures: e.failures.Load(),
		Unreadable: e.unreadable.Load(), Spooling: e.isSpooling(), Spool: e.sp.Stats()}
}

// Ready reports whether records go straight to Kafka (for /readyz), and
// why not.
func (e *Exporter) Ready() (bool, string) {
	e.smu.Lock()
	defer e.smu.Unlock()
	if e.spooling {
		return false, fmt.Sprintf("Kafka unreachable or behind since %s; flow records are spooled to disk", e.since.UTC().Format(time.RFC3339))
	}
	return true, ""
}

// Close sends what is queued and tries to empty the spool until ctx ends;
// what is left stays in the spool for the next start.
func (e *Exporter) Close(ctx context.Context) error {
	var err error
	e.closeOnce.Do(func() { err = e.close(ctx) })
	return err
}

func (e *Exporter) close(ctx context.Context) error {
	close(e.stopFlush)
	<-e.flushDone
	e.bmu.Lock()
	if b := e.cur; b != nil && len(b.spans) > 0 {
		e.full <- b
	}
	e.cur, e.closed = nil, true
	close(e.full)
	e.bmu.Unlock()

	select {
	case <-e.sendDone:
	case <-ctx.Done():
		e.log.Warn("exporter: stopping before Kafka took everything; the rest stays in the spool", "err", ctx.Err())
		e.cancel()
		<-e.sendDone
	}
	e.cancel()
	// The intake may still hold a batch the sender no longer takes.
	<-e.inDone
	werr := e.w.Close()
	st := e.sp.Stats()
	serr := e.sp.Close()
	e.log.Info("exporter stopped", "exported", e.exported.Load(), "spool_records", st.Records, "spool_bytes", st.Bytes)
	if serr != nil {
		return serr
	}
	if werr != nil {
		return fmt.Errorf("export: closing the Kafka writer: %w", werr)
	}
	return nil
}

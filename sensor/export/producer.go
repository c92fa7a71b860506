package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	_ "github.com/edgeward/edgeward/internal/kafkalz4" // cheaper lz4 writes for every producer
	"github.com/segmentio/kafka-go"
)

// producer writes the exporter's batches with kafka-go's Client: one
// Produce request per partition, all partitions at once, acks=all.
//
// It stands in for kafka.Writer, which re-batches what the exporter has
// already batched: it looks up the topic's metadata for every message and
// allocates a BatchSize-long message slice per partition per call, which
// made it cost about twice the CPU per record (BenchmarkExporter).
// Retrying is the exporter's job (through the spool), so a failed request
// is reported, not retried.
type producer struct {
	client *kafka.Client
	topic  string
	comp   kafka.Compression
	bal    kafka.Murmur2Balancer // the Java client's partitioner

	mu        sync.Mutex // one WriteMessages at a time (the exporter's sender)
	parts     []int
	refreshed time.Time
	byPart    [][]int32
	readers   []recordReader
	errs      []error // by message
}

// metadataTTL is how long the partition count is trusted; a failed write
// refreshes it sooner.
const metadataTTL = 30 * time.Second

func newProducer(brokers []string, topic string, comp kafka.Compression, tr *kafka.Transport) *producer {
	return &producer{
		client: &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 10 * time.Second},
		topic:  topic,
		comp:   comp,
	}
}

func (p *producer) partitions(ctx context.Context) error {
	if p.parts != nil && time.Since(p.refreshed) < metadataTTL {
		return nil
	}
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.topic}})
	if err != nil {
		return err
	}
	for _, t := range md.Topics {
		if t.Name != p.topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", p.topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %s has no partitions", p.topic)
		}
		p.parts = p.parts[:0]
		for i := range len(t.Partitions) {
			p.parts = append(p.parts, i)
		}
		p.refreshed = time.Now()
		return nil
	}
	return fmt.Errorf("topic %s: %w", p.topic, kafka.UnknownTopicOrPartition)
}

// WriteMessages implements Writer. Partial failures come back as
// kafka.WriteErrors, one entry per message.
func (p *producer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.partitions(ctx); err != nil {
		return err
	}
	n := len(p.parts)
	for len(p.byPart) < n {
		p.byPart = append(p.byPart, nil)
		p.readers = append(p.readers, recordReader{})
	}
	for i := range n {
		p.byPart[i] = p.byPart[i][:0]
	}
	for i := range msgs {
		part := p.bal.Balance(msgs[i], p.parts...)
		p.byPart[part] = append(p.byPart[part], int32(i))
	}
	p.errs = slices.Grow(p.errs[:0], len(msgs))[:len(msgs)]
	clear(p.errs)
	var wg sync.WaitGroup
	for part := range n {
		if len(p.byPart[part]) == 0 {
			continue
		}
		wg.Go(func() { p.produce(ctx, part, msgs, p.byPart[part]) })
	}
	wg.Wait()
	if !slices.ContainsFunc(p.errs, func(err error) bool { return err != nil }) {
		return nil
	}
	p.parts = nil // leaders or partitions may have moved
	return kafka.WriteErrors(slices.Clone(p.errs))
}

// produce writes the messages idx of msgs, in order, to part and sets the
// error of each one Kafka did not take. It returns the error that stopped
// it, nil if every message was taken or refused for good. Kafka refuses
// a partition's record batch as a whole: one that is refused for good
// (above the broker's message.max.bytes, or holding an invalid record) is
// split in halves, sent one after the other, so that only the messages
// Kafka refuses by themselves are lost.
func (p *producer) produce(ctx context.Context, part int, msgs []kafka.Message, idx []int32) error {
	r := &p.readers[part]
	r.msgs, r.idx, r.next = msgs, idx, 0
	res, err := p.client.Produce(ctx, &kafka.ProduceRequest{
		Topic: p.topic, Partition: part, RequiredAcks: kafka.RequireAll, Compression: p.comp, Records: r,
	})
	if err == nil && res != nil && res.Error != nil {
		err = res.Error
	}
	switch {
	case err == nil:
		return nil
	case permanent(err) && len(idx) > 1:
		h := len(idx) / 2
		if err := p.produce(ctx, part, msgs, idx[:h]); err != nil {
			p.fail(part, idx[h:], err) // not sent: they would pass the failed ones
			return err
		}
		return p.produce(ctx, part, msgs, idx[h:])
	}
	p.fail(part, idx, err)
	if permanent(err) {
		return nil
	}
	return err
}

func (p *producer) fail(part int, idx []int32, err error) {
	for _, i := range idx {
		p.errs[i] = fmt.Errorf("partition %d: %w", part, err)
	}
}

// Close implements Writer.
func (p *producer) Close() error { return nil }

// recordReader feeds one partition's messages to a Produce request,
// reusing one Record.
type recordReader struct {
	msgs       []kafka.Message
	idx        []int32
	next       int
	rec        kafka.Record
	key, value bytesReader
}

func (r *recordReader) ReadRecord() (*kafka.Record, error) {
	if r.next >= len(r.idx) {
		return nil, io.EOF
	}
	m := &r.msgs[r.idx[r.next]]
	r.next++
	r.rec = kafka.Record{Headers: m.Headers}
	r.key.Reset(m.Key)
	r.value.Reset(m.Value)
	r.rec.Key, r.rec.Value = &r.key, &r.value
	return &r.rec, nil
}

type bytesReader struct{ bytes.Reader }

func (*bytesReader) Close() error { return nil }

// permanent reports whether Kafka will never take the record, so that
// retrying it from the spool would block everything behind it.
func permanent(err error) bool {
	return errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.InvalidMessage) ||
		errors.Is(err, kafka.RecordListTooLarge) || errors.Is(err, kafka.InvalidRecord) || errors.Is(err, kafka.InvalidMessageSize)
}

//! One gzip member deflated in fixed-size blocks on several threads (pigz's method): each block is
//! compressed alone with the previous 32 KiB as dictionary, so bytes depend on block size and
//! level only, never on the thread count. Memory stays bounded: a few blocks per thread in flight.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per block: large enough that the 32 KiB dictionary costs little.
pub const BLOCK_SIZE: usize = 512 * 1024;
/// Deflate's window: the dictionary each block gets from the one before.
const DICTIONARY: usize = 32 * 1024;
/// The gzip header: deflate, no name, mtime 0, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// Overrides the number of compression threads (default: the CPUs available).
pub const THREADS_ENV: &str = "SPIN_AKS_GZIP_THREADS";

/// The compression threads to use: `SPIN_AKS_GZIP_THREADS`, else the CPUs available.
pub fn default_threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

struct Job {
    dictionary: Arc<Vec<u8>>,
    block: Arc<Vec<u8>>,
    last: bool,
    reply: SyncSender<io::Result<Vec<u8>>>,
}

/// A gzip writer whose output is identical for every thread count.
pub struct ParallelGzip<W: Write> {
    inner: W,
    block: Vec<u8>,
    previous: Arc<Vec<u8>>,
    crc: crc32fast::Hasher,
    size: u64,
    jobs: Option<SyncSender<Job>>,
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_in_flight: usize,
    /// With one thread, blocks are compressed here, on the caller's thread.
    local: Option<Compress>,
}

impl<W: Write> ParallelGzip<W> {
    /// Starts a member at `level` on `threads` threads (1: no threads are started).
    pub fn new(mut inner: W, level: u32, threads: usize) -> io::Result<Self> {
        inner.write_all(&HEADER)?;
        let level = Compression::new(level);
        let (jobs, local) = if threads > 1 {
            (Some(start_workers(threads, level)), None)
        } else {
            (None, Some(Compress::new(level, false)))
        };
        Ok(ParallelGzip {
            inner,
            block: Vec::with_capacity(BLOCK_SIZE),
            previous: Arc::new(Vec::new()),
            crc: crc32fast::Hasher::new(),
            size: 0,
            jobs,
            in_flight: VecDeque::new(),
            max_in_flight: 2 * threads,
            local,
        })
    }

    /// Ends the member (last block, CRC-32 and size) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let crc = std::mem::take(&mut self.crc).finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&(self.size as u32).to_le_bytes())?;
        self.jobs = None;
        Ok(self.inner)
    }

    /// Hands the filled block to a worker (or compresses it here) and starts the next.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let block = Arc::new(std::mem::replace(
            &mut self.block,
            Vec::with_capacity(BLOCK_SIZE),
        ));
        let dictionary = std::mem::replace(&mut self.previous, Arc::new(tail(&block)));
        let (reply, result) = mpsc::sync_channel(1);
        let job = Job {
            dictionary,
            block,
            last,
            reply,
        };
        match (&self.jobs, &mut self.local) {
            (Some(jobs), _) => jobs
                .send(job)
                .map_err(|_| io::Error::other("a compression thread stopped"))?,
            (None, Some(compress)) => run(compress, job),
            (None, None) => unreachable!("a writer has workers or a local compressor"),
        }
        self.in_flight.push_back(result);
        while self.in_flight.len() > self.max_in_flight {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let result = self.in_flight.pop_front().expect("a block is in flight");
        let bytes = result
            .recv()
            .map_err(|_| io::Error::other("a compression thread stopped"))??;
        self.inner.write_all(&bytes)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        if self.block.len() == BLOCK_SIZE {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Blocks are fixed-size, so a flush writes out only what is already compressed.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The last [`DICTIONARY`] bytes of `block`.
fn tail(block: &[u8]) -> Vec<u8> {
    block[block.len().saturating_sub(DICTIONARY)..].to_vec()
}

fn start_workers(threads: usize, level: Compression) -> SyncSender<Job> {
    let (jobs, queue) = mpsc::sync_channel::<Job>(threads);
    let queue = Arc::new(Mutex::new(queue));
    for _ in 0..threads {
        let queue = Arc::clone(&queue);
        std::thread::spawn(move || {
            let mut compress = Compress::new(level, false);
            loop {
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => run(&mut compress, job),
                    Err(_) => return,
                }
            }
        });
    }
    jobs
}

fn run(compress: &mut Compress, job: Job) {
    let result = deflate_block(compress, &job.dictionary, &job.block, job.last);
    let _ = job.reply.send(result);
}

/// Raw deflate of one block after `dictionary`; ends byte-aligned (sync flush) or, for the
/// last block, with the final block bit. Incompressible blocks are stored without trying.
fn deflate_block(
    compress: &mut Compress,
    dictionary: &[u8],
    input: &[u8],
    last: bool,
) -> io::Result<Vec<u8>> {
    if incompressible(input) {
        return Ok(stored(input, last));
    }
    compress.reset();
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() + input.len() / 16 + 64);
    loop {
        if out.len() == out.capacity() {
            out.reserve(64 * 1024);
        }
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == input.len();
        match status {
            Status::StreamEnd => return Ok(out),
            _ if !last && all_in && out.len() < out.capacity() => return Ok(out),
            _ => {}
        }
    }
}

/// Whether deflate would only store `block`, judged from its bytes alone (so the decision, and
/// the output, stay deterministic): byte frequencies within 1% of uniform, and almost no 4-byte
/// sequence seen again nearby. Random and already-compressed data (images, fonts) qualify.
fn incompressible(block: &[u8]) -> bool {
    const MIN: usize = 4096;
    if block.len() < MIN {
        return false;
    }
    let mut counts = [0u64; 256];
    for b in block {
        counts[*b as usize] += 1;
    }
    let n = block.len() as u64;
    let collisions: u64 = counts.iter().map(|c| c * c).sum();
    if collisions * 256 * 100 > n * n * 101 {
        return false;
    }
    let mut last_seen = vec![0u32; 1 << 12];
    let mut repeats = 0usize;
    for (i, window) in block.windows(4).enumerate() {
        let value = u32::from_le_bytes(window.try_into().expect("4 bytes"));
        let slot = (value.wrapping_mul(2_654_435_761) >> 20) as usize;
        let previous = last_seen[slot] as usize;
        if previous > 0 && block[previous - 1..previous + 3] == *window {
            repeats += 1;
        }
        last_seen[slot] = i as u32 + 1;
    }
    repeats * 100 < block.len()
}

/// A non-empty `block` as deflate stored blocks (at most 65535 bytes each), byte-aligned; the
/// final-block bit on the last one when `last`.
fn stored(block: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len() + block.len() / 65_535 * 5 + 5);
    let mut chunks = block.chunks(65_535).peekable();
    while let Some(chunk) = chunks.next() {
        let final_bit = u8::from(last && chunks.peek().is_none());
        let len = chunk.len() as u16;
        out.push(final_bit);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        let mut state = 7u32;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 3 == 0 {
                    (state >> 24) as u8
                } else {
                    b"spin-aks "[i % 9]
                }
            })
            .collect()
    }

    fn compress(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut gz = ParallelGzip::new(Vec::new(), 6, threads).unwrap();
        for piece in data.chunks(chunk) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn output_is_the_same_for_every_thread_count_and_write_size() {
        let data = sample(3 * BLOCK_SIZE + 12_345);
        let one = compress(&data, 1, 100_000);
        assert_eq!(compress(&data, 2, 4096), one);
        assert_eq!(compress(&data, 5, 1 << 20), one);
    }

    #[test]
    fn output_is_one_gzip_member_any_reader_decodes() {
        for len in [0, 10, BLOCK_SIZE, 2 * BLOCK_SIZE + 1] {
            let data = sample(len);
            let gz = compress(&data, 3, 65_536);
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, data, "length {len}");
        }
    }

    #[test]
    fn random_blocks_are_stored_and_text_is_compressed() {
        let mut state = 1u64;
        let random: Vec<u8> = (0..BLOCK_SIZE)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        assert!(incompressible(&random));
        let counting: Vec<u8> = (0..BLOCK_SIZE).map(|i| i as u8).collect();
        assert!(
            !incompressible(&counting),
            "uniform bytes that repeat are compressible"
        );
        assert!(!incompressible(&sample(BLOCK_SIZE)));
        let gz = compress(&[random.clone(), random.clone()].concat(), 2, 9000);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, [random.clone(), random].concat());
    }

    #[test]
    fn the_dictionary_lets_a_block_reference_the_previous_one() {
        let first = sample(BLOCK_SIZE);
        // 16 KiB repeated from the end of the previous block, well inside deflate's window.
        let repeated = [&first[..], &first[BLOCK_SIZE - 16 * 1024..]].concat();
        let extra = compress(&repeated, 2, 8192).len() - compress(&first, 1, 8192).len();
        assert!(extra < 1024, "the repeated 16 KiB cost {extra} bytes");
    }
}

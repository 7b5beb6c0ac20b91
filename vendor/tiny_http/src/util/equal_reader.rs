use std::io::Read;
use std::io::Result as IoResult;
use std::sync::mpsc::channel;
use std::sync::mpsc::{Receiver, Sender};

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF. If the limit is not reached
/// when the destructor is called, the remaining bytes will be read and
/// thrown away.
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
    last_read_signal: Sender<IoResult<()>>,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    pub fn new(reader: R, size: usize) -> (EqualReader<R>, Receiver<IoResult<()>>) {
        let (tx, rx) = channel();

        let r = EqualReader {
            reader,
            size,
            last_read_signal: tx,
        };

        (r, rx)
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len;
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

impl<R> Drop for EqualReader<R>
where
    R: Read,
{
    fn drop(&mut self) {
        // Vendored by smo (see VENDORED.md): the remaining length is declared
        // by the client (Content-Length), so it must not size an allocation;
        // `vec![0; remaining]` let one request with a huge Content-Length
        // abort the process. The rest of the body is discarded through a
        // fixed stack buffer instead (as upstream tiny-http#290 does).
        let mut buf = [0u8; 8 * 1024];
        let mut remaining_to_read = self.size;

        while remaining_to_read > 0 {
            let len = remaining_to_read.min(buf.len());

            match self.reader.read(&mut buf[..len]) {
                Err(e) => {
                    self.last_read_signal.send(Err(e)).ok();
                    break;
                }
                Ok(0) => {
                    self.last_read_signal.send(Ok(())).ok();
                    break;
                }
                Ok(other) => {
                    remaining_to_read -= other;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use std::io::Read;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) = EqualReader::new(org_reader.by_ref(), 5);

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) = EqualReader::new(org_reader.by_ref(), 5);

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn dropping_with_a_huge_declared_size_discards_without_allocating_it() {
        use std::io::Cursor;

        // An impossible size declared, 11 bytes available: the drop must read
        // to EOF through its fixed buffer rather than allocate the size.
        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());
        {
            let (_equal_reader, _) = EqualReader::new(org_reader.by_ref(), usize::MAX);
        }
        assert_eq!(org_reader.position(), 11);
    }

    #[test]
    fn dropping_discards_more_than_one_buffer_and_stops_at_the_size() {
        use std::io::Cursor;

        let mut data = vec![b'a'; 20_000];
        data.extend_from_slice(b"rest");
        let mut org_reader = Cursor::new(data);
        {
            let (_equal_reader, _) = EqualReader::new(org_reader.by_ref(), 20_000);
        }
        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, "rest");
    }
}

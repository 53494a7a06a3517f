//! Host tests against a small model of the controller: enough of the register interface
//! (FIFOs, MAC CSR window, reset) to check the frame and status-word encoding and the
//! bring-up sequence.

extern crate std;

use core::cell::RefCell;
use std::collections::VecDeque;
use std::vec::Vec;

use super::*;
use crate::rx::RxError;

#[derive(Default)]
struct State {
    tx_words: Vec<u32>,
    rx_status: VecDeque<u32>,
    rx_data: VecDeque<u32>,
    mac: [u32; 16],
    mac_data: u32,
    writes: Vec<(usize, u32)>,
}

/// The model: register reads and writes on a `RefCell`.
#[derive(Default)]
struct Model(RefCell<State>);

impl Model {
    /// Queues a received frame the way the controller stores it: status word with the
    /// length including the CRC, then little-endian data words with the CRC at the end.
    fn receive(&self, frame: &[u8], status_bits: u32) {
        let mut bytes = frame.to_vec();
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let mut s = self.0.borrow_mut();
        s.rx_status
            .push_back((((bytes.len() as u32) & 0x3fff) << 16) | status_bits);
        for chunk in bytes.chunks(4) {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            s.rx_data.push_back(u32::from_le_bytes(w));
        }
    }
}

impl Bus for Model {
    fn read(&self, offset: usize) -> u32 {
        let mut s = self.0.borrow_mut();
        match offset {
            o if o < 0x20 => s.rx_data.pop_front().unwrap_or(0),
            RX_STATUS_FIFO => s.rx_status.pop_front().unwrap_or(0),
            TX_STATUS_FIFO => 0,
            BYTE_TEST => BYTE_TEST_VALUE,
            HW_CFG => 0x0005_0004,
            RX_FIFO_INF => (s.rx_status.len() as u32) << 16,
            TX_FIFO_INF => 4608,
            MAC_CSR_CMD => 0,
            MAC_CSR_DATA => s.mac_data,
            _ => 0,
        }
    }

    fn write(&self, offset: usize, value: u32) {
        let mut s = self.0.borrow_mut();
        s.writes.push((offset, value));
        match offset {
            o if (0x20..0x40).contains(&o) => s.tx_words.push(value),
            MAC_CSR_DATA => s.mac_data = value,
            MAC_CSR_CMD if value & MAC_CSR_BUSY != 0 => {
                let index = (value & 0xf) as usize;
                if value & MAC_CSR_READ != 0 {
                    s.mac_data = s.mac[index];
                } else {
                    s.mac[index] = s.mac_data;
                }
            }
            _ => {}
        }
    }
}

static WAKEUP: Wakeup = Wakeup::new();

#[test]
fn a_frame_goes_out_as_two_commands_and_little_endian_words() {
    let model = Model::default();
    let frame: Vec<u8> = (1..=15).collect();
    tx::write_frame(&model, &frame, 7);
    let words = model.0.borrow().tx_words.clone();
    assert_eq!(
        words,
        [
            (1 << 13) | (1 << 12) | 15,
            (7 << 16) | 15,
            0x0403_0201,
            0x0807_0605,
            0x0c0b_0a09,
            0x000f_0e0d,
        ]
    );
    assert_eq!(tx::fifo_bytes(15), 8 + 16);
}

#[test]
fn a_received_frame_comes_back_without_its_crc() {
    let model = Model::default();
    let frame: Vec<u8> = (0..60).map(|i| i as u8).collect();
    model.receive(&frame, 0);
    assert_eq!(rx::status_words_waiting(model.read(RX_FIFO_INF)), 1);
    let mut buf = [0u8; MAX_FRAME];
    assert_eq!(rx::read_frame(&model, &mut buf), Ok(60));
    assert_eq!(&buf[..60], &frame[..]);
    assert!(model.0.borrow().rx_data.is_empty(), "CRC words read too");
}

#[test]
fn a_flagged_or_runt_frame_is_skipped_whole_and_the_next_one_reads() {
    let model = Model::default();
    model.receive(&[0xaa; 61], 1 << 15);
    model.receive(&[0xbb; 3], 0);
    model.receive(&[0xcc; 42], 0);
    let mut buf = [0u8; MAX_FRAME];
    assert!(matches!(
        rx::read_frame(&model, &mut buf),
        Err(RxError::Status(_))
    ));
    assert_eq!(rx::read_frame(&model, &mut buf), Err(RxError::Length(3)));
    assert_eq!(rx::read_frame(&model, &mut buf), Ok(42));
    assert_eq!(&buf[..42], &[0xcc; 42][..]);
}

#[test]
fn bring_up_resets_reads_the_mac_and_enables_tx_and_rx() {
    let model = Model::default();
    {
        let mut s = model.0.borrow_mut();
        s.mac[MAC_ADDRL as usize] = 0x3412_0052;
        s.mac[MAC_ADDRH as usize] = 0x0000_7856;
    }
    let dev = Lan9118::new(model, &WAKEUP).unwrap();
    assert_eq!(dev.mac_address(), [0x52, 0x00, 0x12, 0x34, 0x56, 0x78]);
    let s = dev.bus.0.borrow();
    assert_eq!(s.writes.first(), Some(&(HW_CFG, HW_CFG_SRST)));
    assert!(s.writes.contains(&(TX_CFG, TX_CFG_TX_ON)));
    assert_eq!(
        s.mac[MAC_CR as usize],
        MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX
    );
}

#[test]
fn a_missing_controller_is_named() {
    struct Nothing;
    impl Bus for Nothing {
        fn read(&self, _: usize) -> u32 {
            0xffff_ffff
        }
        fn write(&self, _: usize, _: u32) {}
    }
    assert_eq!(
        Lan9118::new(Nothing, &WAKEUP).err(),
        Some(InitError::NotFound(0xffff_ffff))
    );
}

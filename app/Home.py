"""The app's front page: what seqdiff does and where each page is."""

import common
import streamlit as st

st.set_page_config(page_title="seqdiff", page_icon="🧬", layout="wide")
st.title("seqdiff")
st.markdown(
    "Order-free **masked discrete diffusion** (MD4 / GenMD4). The model learns to fill in masked "
    "tokens in any order, so it can design any subset of a protein's residues, or fill any subset of a "
    "table's cells, while keeping the rest exactly as given."
)
st.page_link(
    "pages/1_Protein_design.py",
    label="**Protein design**: keep some residues (ranges, clicks, `_` masks, or a motif contig) "
    "and design the rest",
    icon=":material/biotech:",
)
st.page_link(
    "pages/2_Table_imputation.py",
    label="**Table imputation**: upload a Parquet, CSV or Excel table, fit a model on its observed cells "
    "and fill the missing ones",
    icon=":material/table_chart:",
)
st.page_link(
    "pages/3_Model.py",
    label="**Model**: the model card, its training record and the learned unmasking order",
    icon=":material/insights:",
)
st.caption(
    f"Model: `{common.default_model_folder()}` (set ${common.MODEL_ENV} or change it in a page's sidebar)."
)
